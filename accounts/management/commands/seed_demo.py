"""manage.py seed_demo: demo data for the embedded console, safe to run any number of times.

Portal users are made through accounts.lifecycle, so their audit events, outbox rows and
license seats are exactly what the console would have produced."""

import random
import string
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from accounts import licenses, lifecycle
from accounts.models import PortalAccount, Role, User, UserKind, UserState, UserType
from contacts.models import CONTACT_ID_LENGTH, Contact
from contacts.salesforce_ids import to_18

DEMO_PASSWORD = "demo-password-1"
SEED = 4711
NEAR_LIMIT = 0.8
# Invitations that really go out (to the Sent mail page); the rest are invited silently so the
# demo does not mail a few hundred people.
MAILED_INVITES_PER_ACCOUNT = 2

STAFF = (
    ("admin@mssp.example", "Mia Mssp", UserKind.MSSP_ADMIN),
    ("tech@mssp.example", "Theo Tech", UserKind.TECHNICIAN),
)

# fmt: off
FIRST_NAMES = (
    "Ada", "Alan", "Barbara", "Brian", "Carla", "Chen", "Dana", "Diego", "Elena", "Emil",
    "Fatima", "Frank", "Grace", "Hannah", "Hugo", "Ines", "Ivan", "Jana", "Jonas", "Kemal",
    "Lena", "Liam", "Maria", "Mateo", "Nadia", "Noah", "Olga", "Omar", "Paula", "Quentin",
    "Rosa", "Sami", "Sofia", "Tariq", "Uma", "Victor", "Wen", "Yara", "Yusuf", "Zoe",
)
LAST_NAMES = (
    "Anders", "Baker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito",
    "Jensen", "Kowalski", "Larsen", "Meyer", "Novak", "Okafor", "Petrov", "Quinn", "Rossi",
    "Schmidt", "Silva", "Tanaka", "Umar", "Varga", "Weber", "Xu", "Yilmaz", "Zhang", "Moreau",
    "Nilsson", "Haddad",
)
# fmt: on

# What happens to the i-th invited user of a type after the invitation, cycling; it gives every
# account enabled, unconfirmed and disabled users, the disabled ones both with and without a
# past activation (enabling them again restores access or re-invites, respectively).
ACTIVATE, STAY, DISABLE_ACTIVE, DISABLE_INVITED = "activate", "stay", "disable-active", "disable"
STATE_CYCLE = [ACTIVATE] * 3 + [DISABLE_ACTIVE] + [STAY] * 3 + [DISABLE_INVITED] + [STAY] * 2


@dataclass(frozen=True)
class AccountPlan:
    name: str
    slug: str
    licenses: dict  # user type -> seats
    invites: dict  # user type -> users to invite, besides the account admin
    roles: dict  # user type -> the active roles of that type its users get
    inactive_roles: tuple  # (name, user type)
    contacts: int
    crm_accounts: tuple
    admin_name: str

    @property
    def admin_email(self):
        return f"admin@{self.slug}.example"


P, C, E = UserType.PARTNER, UserType.CUSTOMER, UserType.EMPLOYEE
ACCOUNTS = (
    AccountPlan(
        name="Acme Partners",
        slug="acme",
        # 48 partners invited, 10 of them disabled: 38 of 42 seats in use (90%), so the console
        # has a license warning to show.
        licenses={P: 42, C: 30, E: 10},
        invites={P: 48, C: 12, E: 3},
        roles={P: ("Partner User", "Partner Manager"), C: ("Customer User",), E: ("Employee",)},
        inactive_roles=(("Reseller", P),),
        contacts=130,
        crm_accounts=(
            "Acme Corp",
            "Wayne Enterprises",
            "Stark Industries",
            "Umbrella Corp",
            "Cyberdyne Systems",
            "Soylent Corp",
        ),
        admin_name="Ada Acme",
    ),
    AccountPlan(
        name="Globex Customers",
        slug="globex",
        licenses={P: 10, C: 100, E: 5},
        invites={P: 6, C: 45, E: 2},
        roles={P: ("Partner User",), C: ("Customer User", "Customer Admin"), E: ("Employee",)},
        inactive_roles=(("Legacy Customer", C),),
        contacts=110,
        crm_accounts=(
            "Globex Corporation",
            "Hooli",
            "Vandelay Industries",
            "Pied Piper",
            "Massive Dynamic",
            "Tyrell Corp",
        ),
        admin_name="Gus Globex",
    ),
    AccountPlan(
        name="Initech",
        slug="initech",
        licenses={P: 15, C: 25, E: 10},
        invites={P: 8, C: 12, E: 4},
        roles={P: ("Partner User",), C: ("Customer User",), E: ("Employee", "Manager")},
        inactive_roles=(("TPS Reviewer", E),),
        contacts=60,
        crm_accounts=("Initrode", "Penetrode", "Chotchkie's", "Intertrode"),
        admin_name="Bill Lumbergh",
    ),
)


class Command(BaseCommand):
    help = (
        "Load demo data: MSSP staff, three portal accounts with roles, contacts and portal "
        "users in every state. Accounts that already exist are left as they are."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--without-debug",
            action="store_true",
            help="Seed even with DEBUG off (a throwaway database only: the logins' password "
            "is public).",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["without_debug"]:
            # Its MSSP admin's password is public: on a production database whoever signs in
            # first would enrol their own second factor and own the console.
            raise CommandError(
                "seed_demo creates logins whose password is public (demo-password-1), so it "
                "runs only with DEBUG on, as `python3 run.py demo` sets it. Never load it into "
                "a database that matters."
            )
        with transaction.atomic():
            # One hash for every demo login: PBKDF2 costs ~0.2 s a call by design, and the
            # password is public anyway.
            password_hash = make_password(DEMO_PASSWORD)
            seeded, kept = [], []
            staff = {}
            for email, name, kind in STAFF:
                staff[kind], created = self._staff(email, name, kind, password_hash)
                (seeded if created else kept).append(email)
            for plan in ACCOUNTS:
                existing = PortalAccount.objects.filter(slug=plan.slug).first()
                if existing is not None:
                    kept.append(existing.name)
                    continue
                _AccountSeeder(plan, staff, password_hash).run()
                seeded.append(plan.name)
        # Mailed invitations go to Celery when the transaction commits, i.e. just now.
        if seeded:
            self.stdout.write(self.style.SUCCESS(f"Seeded demo data: {', '.join(seeded)}."))
        if kept:
            self.stdout.write(f"Already there, left unchanged (passwords too): {', '.join(kept)}.")
        self._report()

    def _staff(self, email, name, kind, password_hash):
        user = User.objects.filter(email=email, portal_account__isnull=True).first()
        if user is not None:
            return user, False
        user = User.objects.create_staff(email, None, name=name, kind=kind)
        user.password = password_hash
        user.save(update_fields=["password"])
        return user, True

    def _report(self):
        base = settings.PORTAL_BASE_URL
        console = base + reverse("login")
        rows = [
            (UserKind(kind).label, email, DEMO_PASSWORD, console)
            for email, _name, kind in STAFF
            if User.objects.filter(email=email, portal_account__isnull=True).exists()
        ]
        accounts = list(PortalAccount.objects.filter(slug__in=[plan.slug for plan in ACCOUNTS]))
        for account in accounts:
            portal = base + reverse("portal-login", kwargs={"slug": account.slug})
            enabled = User.objects.filter(portal_account=account, state=UserState.ENABLED)
            admin = enabled.filter(is_account_admin=True).first()
            member = (
                enabled.filter(is_account_admin=False, contact__deleted_at__isnull=True)
                .exclude(user_type=UserType.EMPLOYEE)
                .order_by("email")
                .first()
            )
            orphan = enabled.filter(contact__deleted_at__isnull=False).order_by("email").first()
            for label, user, url in (
                ("admin", admin, console),
                ("portal user", member, portal),
                ("orphaned user", orphan, portal),
            ):
                if user is not None:
                    rows.append((f"{account.name} {label}", user.email, DEMO_PASSWORD, url))
        self.stdout.write("\nDemo logins:")
        self.stdout.write(_table(("who", "email", "password", "sign in at"), rows))
        self.stdout.write("\nPortal accounts:")
        summary = [_account_row(account) for account in accounts]
        self.stdout.write(
            _table(("account", "contacts", *UserState.values, "licenses in use"), summary)
        )


class _AccountSeeder:
    def __init__(self, plan, staff, password_hash):
        self.plan = plan
        self.mssp_admin = staff[UserKind.MSSP_ADMIN]
        self.technician = staff[UserKind.TECHNICIAN]
        self.password_hash = password_hash
        # Seeded by slug, so each account's data is the same whichever accounts already exist.
        self.rng = random.Random(f"{SEED}-{plan.slug}")
        self.emails = set()
        self.activated = []
        self.mails_left = MAILED_INVITES_PER_ACCOUNT

    def run(self):
        plan = self.plan
        self.account = PortalAccount.objects.create(
            name=plan.name,
            slug=plan.slug,
            partner_licenses=plan.licenses[P],
            customer_licenses=plan.licenses[C],
            employee_licenses=plan.licenses[E],
        )
        self.roles = {
            user_type: [self._role(name, user_type) for name in names]
            for user_type, names in plan.roles.items()
        }
        for name, user_type in plan.inactive_roles:
            self._role(name, user_type, active=False)
        contacts = self._contacts()

        admin = self._invite(
            E, self.mssp_admin, step=ACTIVATE, name=plan.admin_name, email=plan.admin_email
        )
        self._activate(admin)
        lifecycle.make_account_admin(admin, by=self.mssp_admin)

        # Invitable contacts: a live one with an email; the others are there for the import
        # wizard's "contact has no valid email" and the CRM's recycle bin.
        candidates = [c for c in contacts if c.deleted_at is None and "@" in c.email]
        actors = (self.technician, self.mssp_admin, admin)
        signed_up = []
        for user_type in (P, C, E):
            for i in range(plan.invites[user_type]):
                step = STATE_CYCLE[i % len(STATE_CYCLE)]
                by = self.rng.choice(actors)
                if user_type == E:
                    name, email = self._person(f"{plan.slug}.example")
                    user = self._invite(user_type, by, step=step, name=name, email=email)
                else:
                    user = self._invite(user_type, by, step=step, contact=candidates.pop())
                    if step == ACTIVATE:
                        signed_up.append(user)
                if step in (ACTIVATE, DISABLE_ACTIVE):
                    self._activate(user)
                if step in (DISABLE_ACTIVE, DISABLE_INVITED):
                    lifecycle.disable(user, by=self.rng.choice(actors))

        # The CRM deleted one signed-up person's contact: the console's orphaned users page and
        # the portal's "temporarily disabled" message need one.
        Contact.objects.filter(pk=signed_up[-1].contact_id).update(deleted_at=timezone.now())

        User.objects.filter(pk__in=self.activated).update(password=self.password_hash)

    def _role(self, name, user_type, active=True):
        return Role.objects.create(
            portal_account=self.account, name=name, user_type=user_type, active=active
        )

    def _person(self, domain):
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        email = f"{first}.{last}@{domain}".lower()
        n = 2
        while email in self.emails:
            email = f"{first}.{last}{n}@{domain}".lower()
            n += 1
        self.emails.add(email)
        return f"{first} {last}", email

    def _crm_id(self, length):
        alphabet = string.ascii_letters + string.digits
        return "003" + "".join(self.rng.choice(alphabet) for _ in range(length - 3))

    def _contacts(self):
        now = timezone.now()
        contacts = []
        for i in range(self.plan.contacts):
            company = self.rng.choice(self.plan.crm_accounts)
            name, email = self._person(f"{slugify(company)}.example")
            from_crm = i % 3 != 2
            contacts.append(
                Contact(
                    portal_account=self.account,
                    # Explicit ids (the default is random) keep a re-seeded demo recognisable.
                    contact_id=self._crm_id(CONTACT_ID_LENGTH),
                    salesforce_id=to_18(self._crm_id(15)) if from_crm else None,
                    name=name,
                    email=email,
                    crm_account_name=company,
                    source=Contact.Source.CRM if from_crm else Contact.Source.IMPORT,
                )
            )
        # A few without a usable email and a few in the CRM's recycle bin, none with a user.
        contacts[0].email = ""
        contacts[1].email = "n/a"
        contacts[2].deleted_at = now
        contacts[3].deleted_at = now
        return Contact.objects.bulk_create(contacts)

    def _invite(self, user_type, by, *, step, **who):
        send_email = step == STAY and self.mails_left > 0
        if send_email:
            self.mails_left -= 1
        # The role decides the user type: one of this type's roles.
        return lifecycle.invite(
            self.account,
            role=self.rng.choice(self.roles[user_type]),
            by=by,
            send_email=send_email,
            **who,
        )

    def _activate(self, user):
        # No password here (so no hashing); the shared demo hash is set in one update at the end.
        lifecycle.activate(user, None)
        self.activated.append(user.pk)


def _account_row(account):
    states = dict(
        User.objects.filter(portal_account=account)
        .values_list("state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    seats = []
    for user_type in UserType:
        used, limit = licenses.seats_used(account, user_type), account.licenses_for(user_type)
        warn = " (near limit)" if limit and used >= NEAR_LIMIT * limit else ""
        seats.append(f"{user_type.label} {used}/{limit}{warn}")
    return (
        account.name,
        Contact.objects.filter(portal_account=account).count(),
        *(states.get(state, 0) for state in UserState.values),
        ", ".join(seats),
    )


def _table(headers, rows):
    widths = [max(len(str(row[i])) for row in (headers, *rows)) for i in range(len(headers))]

    def line(row):
        cells = (str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        return ("  " + "  ".join(cells)).rstrip()

    rule = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])
