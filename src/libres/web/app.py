"""The calendar web app: Starlette + Jinja2 + htmx on a libres context.

Every request runs in one unit of work on the thread's scheduler session:
committed at its end, rolled back on an error, and the session removed so
the next request starts afresh. Library errors become messages on the
page, never a server error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import NoResultFound
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from libres.context.core import Context
from libres.db.models import Allocation, Reservation
from libres.db.scheduler import Scheduler
from libres.ical import to_ical
from libres.modules import errors
from libres.retry import RetriesExhausted, run_with_retries
from libres.web.seed import RESOURCES, ZONE, Resource, scheduler_for
from libres.web.week import bookable_hours, calendar_events, monday_of, week_bounds

HERE = Path(__file__).parent
CART_COOKIE = 'libres_cart'
# After a write, this person's pages read the primary for this long: more
# than a replica usually lags behind (see docs/scaling.md).
FRESH_COOKIE = 'libres_fresh_until'
FRESH_SECONDS = 10.0
FEED_DAYS = 90

# What a person reads instead of an exception's class name.
MESSAGES: dict[type[errors.LibresError], str] = {
    errors.AlreadyReservedError: 'Sorry, this time is already booked: someone was quicker. Pick another one.',
    errors.InvalidEmailAddress: 'Please give a valid e-mail address.',
    errors.QuotaOverLimit: 'That is more than one order may take.',
    errors.QuotaImpossible: 'There are not that many places at all.',
    errors.InvalidQuota: 'Ask for at least one place.',
    errors.OverlappingReservationError: 'This is in your cart already.',
    errors.NoReservationsToConfirm: 'Your cart is empty.',
    errors.TimerangeTooLong: 'That time runs past what may be booked.',
    errors.InvalidReservationError: 'Nothing may be booked at that time.',
    errors.RecordNotFound: 'That is not there (any more).',
    RetriesExhausted: 'The calendar is busy right now: please try again.',
}


def message_for(error: errors.LibresError) -> str:
    if isinstance(error, UserError):
        return str(error)
    for kind in type(error).__mro__:
        if kind in MESSAGES:
            return MESSAGES[kind]
    return f'That did not work ({type(error).__name__}). {error}'.strip()


class UserError(errors.LibresError):
    """Bad form input, shown like a library error."""


class WebDemo:
    """The routes, bound to a context; ``default_day`` picks the first week shown."""

    def __init__(self, context: Context, default_day: date) -> None:
        self.context = context
        self.default_day = default_day
        self.templates = Jinja2Templates(directory=str(HERE / 'templates'))
        self.resources = {r.name: r for r in RESOURCES}

    # --- the unit of work ---------------------------------------------------

    @contextmanager
    def unit_of_work(self) -> Iterator[None]:
        provider = self.context.get_service('session_provider')
        try:
            yield
            provider.session().commit()
        except BaseException:
            provider.session().rollback()
            raise
        finally:
            provider.session.remove()

    def reads_for(self, request: Request) -> AbstractContextManager[None]:
        """Fresh reads (the primary) for someone who wrote a moment ago."""
        try:
            fresh = float(request.cookies.get(FRESH_COOKIE, '0')) > time.time()
        except ValueError:
            fresh = False
        return scheduler_for(self.context, RESOURCES[0].name).fresh_reads() if fresh else nullcontext()

    def scheduler(self, name: str) -> tuple[Resource, Scheduler]:
        resource = self.resources.get(name)
        if resource is None:
            raise UserError(f'There is no resource called {name!r}.')
        return resource, scheduler_for(self.context, name)

    def page(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        return self.templates.TemplateResponse(request, template, {'resources': RESOURCES, **values},
                                               status_code=status)

    def guarded(self, render: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """Run ``render`` in a unit of work; library errors become a message."""

        def endpoint(request: Request) -> Response:
            try:
                with self.unit_of_work(), self.reads_for(request):
                    response = render(request)
                if request.method == 'POST':
                    # This person just wrote: their next pages read the
                    # primary for a while, so a lagging replica cannot hide
                    # their own booking (docs/scaling.md).
                    response.set_cookie(FRESH_COOKIE, str(time.time() + FRESH_SECONDS),
                                        max_age=int(FRESH_SECONDS), httponly=True, samesite='lax')
                return response
            except (errors.LibresError, NoResultFound) as error:
                text = (message_for(error) if isinstance(error, errors.LibresError)
                        else 'That is not there (any more).')
                if request.headers.get('HX-Request'):
                    return self.page(request, '_message.html', ok=False, message=text)
                return self.page(request, 'error.html', status=400, message=text)

        return endpoint

    # --- pages --------------------------------------------------------------

    def index(self, request: Request) -> Response:
        rows = []
        for resource in RESOURCES:
            _, scheduler = self.scheduler(resource.name)
            start, end = week_bounds(scheduler, monday_of(self.default_day))
            rows.append((resource, sum(i.spots > 0 for i in scheduler.free_intervals(start, end))))
        return self.page(request, 'index.html', rows=rows, week=monday_of(self.default_day))

    def week(self, request: Request) -> Response:
        resource, scheduler = self.scheduler(request.path_params['name'])
        monday = monday_of(_day(request.query_params.get('week')) or self.default_day)
        start, end = week_bounds(scheduler, monday)
        intervals = scheduler.free_intervals(start, end)
        whole = {a.id for a in scheduler.allocations_in_range(start, end) if not a.partly_available}
        return self.page(
            request, 'week.html', resource=resource, monday=monday,
            previous=monday - timedelta(days=7), next=monday + timedelta(days=7),
            bookable=bookable_hours(intervals, whole),
        )

    def week_events(self, request: Request) -> Response:
        _, scheduler = self.scheduler(request.path_params['name'])
        monday = monday_of(_day(request.path_params['monday']) or self.default_day)
        start, end = week_bounds(scheduler, monday)
        return JSONResponse(calendar_events(scheduler, start, end, scheduler.free_intervals(start, end)))

    def book(self, request: Request) -> Response:
        _, scheduler = self.scheduler(request.path_params['name'])
        form = _form(request)
        email = form.get('email', '').strip()
        start, end = _moment(form.get('start')), _moment(form.get('end'))
        manual = scheduler.allocation_by_id(_number(form.get('allocation'))).approve_manually

        def work() -> uuid.UUID:
            token = scheduler.reserve(email, (start, end))
            if not manual:
                scheduler.approve_reservations(token)
            scheduler.commit()
            return token

        run_with_retries(scheduler, work)
        what = f'{start:%a %d %b %H:%M}–{end:%H:%M}'
        if manual:
            text = f'{email} is on the waiting list for {start:%a %d %b}; staff will approve.'
        else:
            text = f'Booked {what} for {email}.'
        return self.page(request, '_message.html', ok=True, message=text)

    def staff(self, request: Request) -> Response:
        pending: list[tuple[Resource, Reservation]] = []
        for resource in RESOURCES:
            _, scheduler = self.scheduler(resource.name)
            rows = scheduler.managed_reservations().filter(Reservation.status == 'pending',
                                                           Reservation.session_id.is_(None))
            pending.extend((resource, row) for row in rows.order_by(Reservation.id))
        return self.page(request, 'staff.html', pending=pending)

    def decide(self, request: Request) -> Response:
        _, scheduler = self.scheduler(request.path_params['name'])
        token = _token(_form(request).get('token'))
        if request.path_params['decision'] not in ('approve', 'deny'):
            raise UserError('Approve or deny, nothing else.')
        approve = request.path_params['decision'] == 'approve'
        emails = [r.email for r in scheduler.reservations_by_token(token)]
        if not emails:
            raise UserError('That reservation is gone already.')

        def work() -> None:
            if approve:
                scheduler.approve_reservations(token)
            else:
                scheduler.deny_reservation(token)
            scheduler.commit()

        run_with_retries(scheduler, work)
        verb = 'Approved' if approve else 'Denied'
        return self.page(request, '_message.html', ok=True, message=f'{verb}: {emails[0]}.')

    def tickets(self, request: Request) -> Response:
        _, scheduler = self.scheduler('concert')
        cart = _cart(request)
        start = datetime.combine(monday_of(self.default_day), datetime.min.time())
        evenings = []
        free = {i.allocation_id: i.spots for i in scheduler.free_intervals(start, start + timedelta(days=28))}
        for allocation in scheduler.allocations_in_range(start, start + timedelta(days=28)).order_by(
            Allocation._start
        ):
            evenings.append((allocation, free.get(allocation.id, 0)))
        rows = self._cart_rows(scheduler, cart)
        response = self.page(request, 'tickets.html', evenings=evenings, cart=rows)
        response.set_cookie(CART_COOKIE, str(cart), httponly=True, samesite='lax')
        return response

    def _cart_rows(self, scheduler: Scheduler, cart: uuid.UUID) -> list[Reservation]:
        return scheduler.queries.reservations_by_session(cart).all()

    def cart_add(self, request: Request) -> Response:
        _, scheduler = self.scheduler('concert')
        cart, form = _cart(request), _form(request)
        allocation = scheduler.allocation_by_id(_number(form.get('allocation')))
        quota = _number(form.get('tickets'))
        email = form.get('email', '').strip()
        try:
            with scheduler.session.begin_nested():
                scheduler.reserve(email, (allocation.start, allocation.end), quota=quota, session_id=cart)
        except errors.LibresError as error:
            # Shown inside the cart, which stays as it was.
            return self._cart_fragment(request, scheduler, cart, message_for(error), ok=False)
        return self._cart_fragment(request, scheduler, cart, f'{quota} ticket(s) in your cart.')

    def cart_remove(self, request: Request) -> Response:
        _, scheduler = self.scheduler('concert')
        cart = _cart(request)
        scheduler.queries.remove_reservation_from_session(cart, _token(_form(request).get('token')))
        return self._cart_fragment(request, scheduler, cart, 'Removed from your cart.')

    def checkout(self, request: Request) -> Response:
        _, scheduler = self.scheduler('concert')
        cart = _cart(request)

        def work() -> int:
            rows = scheduler.queries.reservations_by_session(cart).all()
            if not rows:
                raise errors.NoReservationsToConfirm()
            for token in dict.fromkeys(r.token for r in rows):
                scheduler.approve_reservations(token)
            scheduler.queries.confirm_reservations_for_session(cart)
            scheduler.commit()
            return sum(r.quota for r in rows)

        count = run_with_retries(scheduler, work)
        return self._cart_fragment(request, scheduler, cart, f'Bought {count} ticket(s). Enjoy the concert!')

    def _cart_fragment(
        self, request: Request, scheduler: Scheduler, cart: uuid.UUID, text: str, ok: bool = True
    ) -> Response:
        rows = self._cart_rows(scheduler, cart)
        response = self.page(request, '_cart.html', cart=rows, message=text, ok=ok)
        response.set_cookie(CART_COOKIE, str(cart), httponly=True, samesite='lax')
        return response

    def feed(self, request: Request) -> Response:
        start = datetime.combine(monday_of(self.default_day) - timedelta(days=7), datetime.min.time())
        end = start + timedelta(days=FEED_DAYS)
        email = request.query_params.get('email')
        if request.path_params['name'] == 'person':
            if not email:
                raise UserError('A personal feed needs an e-mail address.')
            schedulers = [scheduler_for(self.context, r.name) for r in RESOURCES]
            body = to_ical(schedulers, start, end, email=email, name=f'Bookings of {email}')
        else:
            resource, scheduler = self.scheduler(request.path_params['name'])
            body = to_ical(scheduler, start, end, name=resource.title)
        return Response(body, media_type='text/calendar; charset=utf-8')

    def free_json(self, request: Request) -> Response:
        _, scheduler = self.scheduler(request.path_params['name'])
        monday = monday_of(_day(request.query_params.get('week')) or self.default_day)
        start, end = week_bounds(scheduler, monday)
        return JSONResponse([i.as_dict() for i in scheduler.free_intervals(start, end)])


def _form(request: Request) -> dict[str, str]:
    # Parsed by the endpoint wrapper below, before the thread runs.
    return request.state.form  # type: ignore[no-any-return]


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f'{value!r} is not a date (use YYYY-MM-DD).') from None


def _moment(value: str | None) -> datetime:
    try:
        return datetime.fromisoformat(value or '')
    except ValueError:
        raise UserError('Pick a time from the calendar.') from None


def _number(value: str | None) -> int:
    try:
        return int(value or '')
    except ValueError:
        raise UserError('Give a number, please.') from None


def _token(value: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(value or '')
    except ValueError:
        raise UserError('That is not a reservation token.') from None


def _cart(request: Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.cookies.get(CART_COOKIE, ''))
    except ValueError:
        return uuid.uuid4()


def create_app(context: Context, default_day: date) -> Starlette:
    """The ASGI app on a context whose resources ``seed`` filled."""
    demo = WebDemo(context, default_day)

    def sync(render: Callable[[Request], Response], form: bool = False) -> Any:
        guarded = demo.guarded(render)

        async def endpoint(request: Request) -> Response:
            from starlette.concurrency import run_in_threadpool

            if form:
                parsed = await request.form()
                request.state.form = {k: str(v) for k, v in parsed.items()}
            return await run_in_threadpool(guarded, request)

        return endpoint

    routes = [
        Route('/', sync(demo.index)),
        Route('/resources/{name}', sync(demo.week)),
        Route('/resources/{name}/free.json', sync(demo.free_json)),
        Route('/resources/{name}/weeks/{monday}/events.json', sync(demo.week_events)),
        Route('/resources/{name}/book', sync(demo.book, form=True), methods=['POST']),
        Route('/staff', sync(demo.staff)),
        Route('/staff/{name}/{decision:str}', sync(demo.decide, form=True), methods=['POST']),
        Route('/tickets', sync(demo.tickets)),
        Route('/tickets/cart/add', sync(demo.cart_add, form=True), methods=['POST']),
        Route('/tickets/cart/remove', sync(demo.cart_remove, form=True), methods=['POST']),
        Route('/tickets/cart/checkout', sync(demo.checkout, form=True), methods=['POST']),
        Route('/ical/{name}.ics', sync(demo.feed)),
        Mount('/static', StaticFiles(directory=str(HERE / 'static')), name='static'),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return HTMLResponse('<p>Nothing here. <a href="/">Back to the resources</a></p>', status_code=404)

    return Starlette(routes=routes, exception_handlers={404: not_found})


__all__ = ('ZONE', 'create_app', 'message_for')
