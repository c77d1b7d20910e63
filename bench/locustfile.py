"""Console admins at work, for bench/load.py (which starts locust on this file; see
bench/README.md). Each simulated admin signs in once, as a person does (password, then the code
of their authenticator app), then browses the users page of the big account: the three tabs,
searches, pages further on, a sort, contact pages, and now and then an action that emails the
user (a login link or a password reset), through its confirm dialog as the console offers it.

bench/load.py writes what it seeded to the JSON file LOAD_DATA (the account, the admins with
their password and TOTP key, ids of users and contacts to open); every request's name, time and
outcome are appended to LOAD_SAMPLES, from which bench/load.py computes its table."""

import itertools
import json
import os
import random
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

from authenticator import totp  # bench/, which locust puts on sys.path
from locust import HttpUser, between, events, task

DATA = json.loads(Path(os.environ["LOAD_DATA"]).read_text())
SLUG = DATA["slug"]
USERS = f"/accounts/{SLUG}/users/"
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
# Which admin the next simulated user is: each signs in as a different person.
_next_admin = itertools.count()
_samples = open(os.environ["LOAD_SAMPLES"], "a", buffering=1)  # noqa: SIM115 - for the run


@events.request.add_listener
def _record(request_type, name, response_time, exception, **_):
    ok = 0 if exception else 1
    _samples.write(f"{time.time():.3f}\t{request_type}\t{name}\t{response_time:.2f}\t{ok}\n")


class ConsoleAdmin(HttpUser):
    # Reading a page, deciding, clicking: as in the earlier measurement (1-3 s).
    wait_time = between(1, 3)

    def on_start(self):
        admin = DATA["admins"][next(_next_admin) % len(DATA["admins"])]
        page = self._page("/sign-in/", "sign-in: page", lands_on="/sign-in/")
        answer = self._post(
            "/sign-in/",
            page,
            {"username": admin["email"], "password": admin["password"], "next": "/accounts/"},
            name="sign-in: password",
            lands_on="/sign-in/code/",
        )
        self._post(
            "/sign-in/code/?next=/accounts/",
            answer,
            {"code": totp(admin["key"]), "next": "/accounts/"},
            name="sign-in: code",
            lands_on="/accounts/",
        )

    def _post(self, url, form_page, fields, *, name, lands_on):
        """POST a form the way a browser does: the CSRF token of the page that showed it."""
        found = CSRF.search(form_page.content) if form_page is not None else None
        if not found:
            return None
        fields = {"csrfmiddlewaretoken": found.group(1).decode(), **fields}
        with self.client.post(
            url, data=fields, name=name, headers={"Referer": form_page.url}, catch_response=True
        ) as response:
            self._judge(response, lands_on)
            return response

    def _page(self, url, name, *, lands_on=None):
        with self.client.get(url, name=name, catch_response=True) as response:
            self._judge(response, lands_on)
            return response

    @staticmethod
    def _judge(response, lands_on):
        """A 4xx or 5xx fails, and so does a page where the redirects (followed) end up
        elsewhere than expected: a console page that sends the admin back to sign in, a
        password or a code that did not get them further."""
        path = urlsplit(response.url).path
        if response.status_code >= 400:
            response.failure(f"{response.status_code}")
        elif lands_on is not None and path != lands_on:
            response.failure(f"ended on {path}, not {lands_on}")
        elif lands_on is None and path.startswith("/sign-in/"):
            response.failure(f"sent to sign in: {response.url}")
        else:
            response.success()

    @task(6)
    def tab(self):
        tab = random.choices(["", "disabled", "unconfirmed"], weights=[3, 1, 1])[0]
        self._page(USERS + (f"?tab={tab}" if tab else ""), f"users: {tab or 'enabled'} tab")

    @task(4)
    def search(self):
        term = random.choice(DATA["search_terms"])
        self._page(f"{USERS}?q={term}", "users: search")

    @task(3)
    def later_page(self):
        tab = random.choice(["", "disabled", "unconfirmed"])
        last = DATA["pages"][tab or "enabled"]
        number = random.randint(2, max(last, 2))
        self._page(f"{USERS}?tab={tab}&page={number}", "users: a later page")

    @task(1)
    def sorted_by_last_sign_in(self):
        self._page(f"{USERS}?sort=-last_login", "users: sort by last sign-in")

    @task(3)
    def contact(self):
        pk = random.choice(DATA["contacts"])
        self._page(f"/accounts/{SLUG}/contacts/{pk}/", "contact page")

    @task(1)
    def user_page(self):
        pk = random.choice(DATA["users"])
        self._page(f"{USERS}{pk}/", "user page")

    @task(1)
    def action(self):
        """Send a login link or a password reset: the confirm dialog, then its POST, which
        redirects back to the list (not followed: its time is the action's)."""
        pk = random.choice(DATA["users"])
        action = random.choice(["send-login-email", "reset-password"])
        url = f"{USERS}{pk}/{action}/"
        dialog = self._page(url, "action: confirm dialog")
        found = CSRF.search(dialog.content) if dialog is not None else None
        if not found:
            return
        with self.client.post(
            url,
            data={"csrfmiddlewaretoken": found.group(1).decode()},
            headers={"Referer": dialog.url},
            name=f"action: {action}",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            location = response.headers.get("Location", "")
            if response.status_code in (302, 303) and "/sign-in/" not in location:
                response.success()
            else:
                response.failure(f"{response.status_code} {location}")
