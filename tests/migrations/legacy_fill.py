"""Run by the *published* libres 1.4.0 (own virtual environment): fill a
database with every kind of record. Usage: python legacy_fill.py DSN"""

import sys
import uuid
from datetime import datetime, timedelta

import libres

context = libres.registry.register_context('legacy')
context.set_setting('dsn', sys.argv[1])

room = libres.new_scheduler(context, 'room', 'Europe/Zurich')
hall = libres.new_scheduler(context, 'hall', 'Europe/Zurich')
course = libres.new_scheduler(context, 'course', 'Europe/Zurich')
room.setup_database()
room.commit()

day = datetime(2031, 3, 3)
# A partly available room: approved, pending and cart reservations, a blocker.
room.allocate((day.replace(hour=8), day.replace(hour=18)), partly_available=True, raster=15,
              data={'name': 'Sitzungszimmer «Zürich»', 'floor': 3})
approved = room.reserve('anna@example.org', (day.replace(hour=9), day.replace(hour=10)),
                        data={'note': 'Café ☕'})
room.approve_reservations(approved)
room.reserve('ben@example.org', (day.replace(hour=11), day.replace(hour=12)))
cart = uuid.UUID('6b1b3c1e-8f7a-4c8e-9a55-2a1d1c3b4a5f')
room.reserve('carl@example.org', (day.replace(hour=13), day.replace(hour=14)), session_id=cart)
room.add_blocker((day.replace(hour=16), day.replace(hour=17)), reason='Reinigung')

# A concert hall with a quota: bookings on the master and on mirrors.
hall.allocate((day.replace(hour=20), day.replace(hour=23)), quota=5, quota_limit=2)
for n, tickets in enumerate((2, 1, 1)):
    hall.approve_reservations(hall.reserve(f'guest{n}@example.org',
                                           (day.replace(hour=20), day.replace(hour=23)), quota=tickets))

# A course: a group of three dates, one approved group reservation.
dates = [(day + timedelta(days=7 * n, hours=14), day + timedelta(days=7 * n, hours=16)) for n in range(3)]
members = course.allocate(dates, grouped=True, quota=2)
course.approve_reservations(course.reserve('dora@example.org', group=members[0].group))
course.reserve('emil@example.org', group=members[0].group)
course.add_blocker(group=course.allocate(
    [(day + timedelta(days=30, hours=9), day + timedelta(days=30, hours=10)),
     (day + timedelta(days=31, hours=9), day + timedelta(days=31, hours=10))], grouped=True)[0].group,
    reason='Ferien')

room.commit()
print('filled')
