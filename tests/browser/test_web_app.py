"""The calendar web app in a real browser: Playwright driving Debian's chromium.

The app runs under uvicorn in a thread of this process, on a free port,
against the test database. ``LIBRES_SCREENSHOTS=docs/images`` keeps the
screenshots (the README's come from here); otherwise they go to a temp dir.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import icalendar
import pytest
import sqlalchemy as sa
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

import libres
from libres.context.session import SessionProvider
from libres.web.app import create_app
from libres.web.seed import seed

MONDAY = date(2030, 6, 10)
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run']
TABLES = 'reservations, reservation_blockers, reserved_slots, allocations'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope='module')
def base_url(provider: SessionProvider, dsn: str, admin_engine: sa.Engine) -> Iterator[str]:
    context = libres.registry.register_context(f'web-{uuid.uuid4().hex[:8]}')
    context.set_setting('dsn', dsn)
    context.set_service('session_provider', lambda _: provider, cache=False)
    seed(context, MONDAY)
    provider.session.remove()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(context, MONDAY), host='127.0.0.1', port=port,
                                           log_level='warning'))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, 'the app did not start'
        time.sleep(0.05)
    yield f'http://127.0.0.1:{port}'
    server.should_exit = True
    thread.join(10)
    with admin_engine.connect() as connection:
        connection.execute(sa.text(f'TRUNCATE {TABLES} RESTART IDENTITY'))


@pytest.fixture(scope='module')
def browser() -> Iterator[Browser]:
    executable = shutil.which('chromium') or shutil.which('chromium-browser')
    assert executable, 'chromium is missing: apt-get install chromium'
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope='module')
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get('LIBRES_SCREENSHOTS')
    folder = Path(kept) if kept else tmp_path_factory.mktemp('screenshots')
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _page(browser: Browser) -> Page:
    context = browser.new_context(viewport={'width': 1200, 'height': 1000})
    return context.new_page()


def _shoot(page: Page, folder: Path, name: str) -> None:
    path = folder / f'{name}.png'
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_the_resources_page_lists_the_three_use_cases(browser: Browser, base_url: str, shots: Path) -> None:
    page = _page(browser)
    page.goto(base_url + '/')
    rows = page.locator('table.resources tbody tr')
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text('Meeting room')
    expect(rows.nth(2)).to_contain_text('Concert tickets')
    _shoot(page, shots, 'web-resources')
    page.context.close()


def test_book_a_free_hour_see_it_taken_and_lose_the_race(browser: Browser, base_url: str, shots: Path) -> None:
    week = f'{base_url}/resources/meeting-room?week={MONDAY.isoformat()}'
    first, second = _page(browser), _page(browser)
    first.goto(week)
    second.goto(week)  # opened before the first books: it still shows 13:00 free
    slot = f'button[data-slot="{MONDAY.isoformat()}T1300"]'
    expect(first.locator('#calendar .ec-event').first).to_be_visible()
    expect(first.locator(slot)).to_be_visible()

    first.fill('#email', 'visitor@example.org')
    first.click(slot)
    expect(first.locator('#result .message')).to_contain_text('Booked Mon 10 Jun 13:00–14:00')
    # Taken at once on the page, and still taken when it is loaded anew.
    expect(first.locator(slot)).to_have_count(0)
    expect(first.locator('#calendar')).to_contain_text('visitor@example.org')
    first.goto(week)
    expect(first.locator(slot)).to_have_count(0)
    expect(first.locator('#calendar')).to_contain_text('visitor@example.org')
    _shoot(first, shots, 'web-week')

    second.fill('#email', 'latecomer@example.org')
    second.click(slot)
    refusal = second.locator('#result .message')
    expect(refusal).to_contain_text('already booked')
    expect(refusal).to_have_attribute('data-ok', 'no')
    expect(second.locator('#calendar')).to_contain_text('visitor@example.org')  # redrawn
    first.context.close()
    second.context.close()


def test_staff_approve_a_waiting_list_entry(browser: Browser, base_url: str, shots: Path) -> None:
    page = _page(browser)
    page.goto(base_url + '/staff')
    row = page.locator('tr[data-email="dana@example.org"]')
    expect(row).to_have_count(1)
    _shoot(page, shots, 'web-staff')
    row.get_by_role('button', name='Approve').click()
    expect(row.locator('.message')).to_contain_text('Approved: dana@example.org')
    page.reload()
    expect(page.locator('tr[data-email="dana@example.org"]')).to_have_count(0)
    expect(page.locator('tr[data-email="eli@example.org"]')).to_have_count(1)
    page.context.close()


def test_buy_tickets_through_the_cart(browser: Browser, base_url: str, shots: Path) -> None:
    page = _page(browser)
    page.goto(base_url + '/tickets')
    page.fill('#buyer', 'fan@example.org')
    first_evening = page.locator('table.evenings tbody tr').first
    expect(first_evening).to_contain_text('46 of 50')
    first_evening.get_by_role('button', name='Add to cart').click()
    expect(page.locator('#cart')).to_contain_text('2 ticket(s) in your cart')
    first_evening.locator('input[name=tickets]').fill('9')
    first_evening.get_by_role('button', name='Add to cart').click()
    expect(page.locator('#cart .message')).to_contain_text('more than one order may take')
    _shoot(page, shots, 'web-tickets')
    page.locator('#cart').get_by_role('button', name='Buy').click()
    expect(page.locator('#cart')).to_contain_text('Bought 2 ticket(s)')
    page.reload()
    expect(page.locator('table.evenings tbody tr').first).to_contain_text('44 of 50')
    page.context.close()


def test_download_the_ical_feeds_and_parse_them(browser: Browser, base_url: str) -> None:
    page = _page(browser)
    page.goto(base_url + '/')
    href = page.locator('a[href="/ical/meeting-room.ics"]').first.get_attribute('href')
    response = page.request.get(base_url + str(href))
    assert response.ok and response.headers['content-type'].startswith('text/calendar')
    calendar = icalendar.Calendar.from_ical(response.body())
    assert str(calendar['x-wr-calname']) == 'Meeting room'
    summaries = [str(e['summary']) for e in calendar.walk('VEVENT')]
    assert 'meeting-room: alice@example.org' in summaries and 'meeting-room: cleaning' in summaries
    again = icalendar.Calendar.from_ical(page.request.get(base_url + str(href)).body())
    assert [str(e['uid']) for e in again.walk('VEVENT')] == [str(e['uid']) for e in calendar.walk('VEVENT')]

    page.fill('input[name=email]', 'gina@example.org')
    with page.expect_download() as download:
        page.get_by_role('button', name='Get my iCal feed').click()
    personal = icalendar.Calendar.from_ical(Path(download.value.path()).read_bytes())
    [event] = personal.walk('VEVENT')
    assert str(event['summary']) == 'nursery: gina@example.org' and str(event['status']) == 'CONFIRMED'
    page.context.close()
