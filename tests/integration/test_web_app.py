"""The web app without a browser: bad requests become messages, never a 500;
the command serves the seeded app."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import date

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from libres.context.core import Context
from libres.web.app import create_app
from libres.web.seed import seed

MONDAY = date(2030, 6, 10)
HX = {'HX-Request': 'true'}


@pytest.fixture
def client(context: Context) -> TestClient:
    seed(context, MONDAY)
    context.get_service('session_provider').session.remove()
    return TestClient(create_app(context, MONDAY), raise_server_exceptions=True)


def _room_allocation(context: Context) -> int:
    from libres.web.seed import scheduler_for

    room = scheduler_for(context, 'meeting-room')
    allocation = room.managed_allocations().order_by('_start').first()
    assert allocation is not None
    return allocation.id


def test_every_page_renders(client: TestClient) -> None:
    for url in ('/', '/resources/meeting-room', '/resources/nursery', '/resources/concert', '/staff',
                '/tickets', f'/resources/meeting-room?week={MONDAY.isoformat()}'):
        response = client.get(url)
        assert response.status_code == 200, url
    assert client.get('/static/event-calendar.min.js').status_code == 200
    assert client.get('/static/htmx.min.js').status_code == 200
    events = client.get(f'/resources/meeting-room/weeks/{MONDAY.isoformat()}/events.json').json()
    titles = {e.get('title') for e in events}
    assert {'alice@example.org', 'free', 'cleaning'} <= titles
    alice = next(e for e in events if e.get('title') == 'alice@example.org')
    assert (alice['start'], alice['end']) == ('2030-06-10T09:00:00', '2030-06-10T11:00:00')
    free = client.get('/resources/meeting-room/free.json').json()
    assert free[0] == {'start': '2030-06-10T08:00:00+02:00', 'end': '2030-06-10T09:00:00+02:00',
                       'allocation_id': free[0]['allocation_id'], 'spots': 1}


def test_library_errors_are_messages_not_server_errors(client: TestClient, context: Context) -> None:
    allocation = _room_allocation(context)
    book = '/resources/meeting-room/book'
    taken = {'email': 'x@example.org', 'start': '2030-06-10T09:00', 'end': '2030-06-10T10:00',
             'allocation': str(allocation)}
    cases = [
        (taken, 'already booked'),
        ({**taken, 'email': 'not an address', 'start': '2030-06-10T12:00', 'end': '2030-06-10T13:00'},
         'valid e-mail'),
        ({**taken, 'start': 'soon'}, 'Pick a time'),
        ({**taken, 'allocation': '999999'}, 'not there'),
        ({**taken, 'allocation': 'x'}, 'Give a number'),
        ({**taken, 'start': '2030-06-10T17:00', 'end': '2030-06-10T19:00'}, 'runs past'),
    ]
    for form, expected in cases:
        response = client.post(book, data=form, headers=HX)
        assert response.status_code == 200 and 'data-ok="no"' in response.text, form
        assert expected in response.text, (form, response.text)
    assert client.post('/staff/nursery/approve', data={'token': 'nope'}, headers=HX).text.count('not a reservation')
    gone = client.post('/staff/nursery/approve', data={'token': str(uuid.uuid4())}, headers=HX)
    assert 'gone already' in gone.text
    assert 'Approve or deny' in client.post('/staff/nursery/fire', data={'token': str(uuid.uuid4())},
                                            headers=HX).text
    page = client.get('/resources/attic')
    assert page.status_code == 400 and 'no resource called' in page.text
    assert client.get('/resources/meeting-room?week=someday').status_code == 400
    assert 'empty' in client.post('/tickets/cart/checkout', data={}, headers=HX).text
    assert 'e-mail address' in client.get('/ical/person.ics').text


def test_deny_takes_an_entry_off_the_waiting_list(client: TestClient) -> None:
    staff = client.get('/staff').text
    assert 'finn@example.org' in staff
    token = staff.split('finn@example.org', 1)[1].split('name="token" value="', 1)[1].split('"', 1)[0]
    response = client.post('/staff/nursery/deny', data={'token': token}, headers=HX)
    assert 'Denied: finn@example.org' in response.text
    # Whoever wrote reads the primary for a while (a replica may lag behind).
    assert float(response.cookies['libres_fresh_until']) > time.time()
    assert 'finn@example.org' not in client.get('/staff').text


def test_the_cart_keeps_its_tickets_until_they_are_removed(client: TestClient, context: Context) -> None:
    from libres.web.seed import scheduler_for

    concert = scheduler_for(context, 'concert')
    evening = concert.managed_allocations().order_by('_start').first()
    assert evening is not None
    client.get('/tickets')  # sets the cart cookie
    added = client.post('/tickets/cart/add', data={'allocation': evening.id, 'tickets': '3',
                                                   'email': 'fan@example.org'}, headers=HX)
    assert '3 ticket(s) in your cart' in added.text
    again = client.post('/tickets/cart/add', data={'allocation': evening.id, 'tickets': '1',
                                                   'email': 'fan@example.org'}, headers=HX)
    assert 'in your cart already' in again.text and '3 ×' in again.text
    token = added.text.split('name="token" value="', 1)[1].split('"', 1)[0]
    removed = client.post('/tickets/cart/remove', data={'token': token}, headers=HX)
    assert 'Removed' in removed.text and 'Empty.' in removed.text


def test_the_command_seeds_serves_and_prints_the_url(clean_database: str, admin_engine: sa.Engine) -> None:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, '-m', 'libres.web', '--port', str(port), '--dsn', clean_database,
         '--day', MONDAY.isoformat()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, 'PYTHONUNBUFFERED': '1'},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f'http://127.0.0.1:{port}/' in line, process.stderr.read() if process.poll() and process.stderr else line
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{port}/resources/meeting-room') as page:
                    body = page.read().decode()
                events = f'http://127.0.0.1:{port}/resources/meeting-room/weeks/{MONDAY.isoformat()}/events.json'
                with urllib.request.urlopen(events) as answer:
                    body += answer.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, 'the app did not answer'
                time.sleep(0.1)
        assert 'Meeting room' in body and 'alice@example.org' in body
    finally:
        process.terminate()
        process.wait(15)
        with admin_engine.connect() as connection:
            connection.execute(sa.text('TRUNCATE reservations, reservation_blockers, reserved_slots, '
                                       'allocations RESTART IDENTITY'))


def test_the_command_seeds_and_prints_the_url_before_serving(
    clean_database: str, admin_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from libres.web.cli import web_command

    # A port already taken: the command seeds, prints its URL, then the
    # server cannot bind and the command ends instead of serving.
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(web_command, ['--port', str(port), '--dsn', clean_database,
                                                  '--day', MONDAY.isoformat()])
    try:
        assert f'http://127.0.0.1:{port}/' in result.output
        assert result.exit_code != 0
        with admin_engine.connect() as connection:
            emails = set(connection.execute(sa.text('SELECT email FROM reservations')).scalars())
        assert {'alice@example.org', 'dana@example.org', 'hugo@example.org'} <= emails
    finally:
        with admin_engine.connect() as connection:
            connection.execute(sa.text('TRUNCATE reservations, reservation_blockers, reserved_slots, '
                                       'allocations RESTART IDENTITY'))


def test_python_dash_m_libres_web_has_a_help(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import runpy

    monkeypatch.setattr(sys, 'argv', ['libres.web', '--help'])
    with pytest.raises(SystemExit) as exit:
        runpy.run_module('libres.web', run_name='__main__')
    assert exit.value.code == 0
    assert '--port' in capsys.readouterr().out
