import factory
from django.utils import timezone

from accounts.models import PortalAccount, Role, User, UserKind, UserState, UserType
from contacts.models import Contact

PASSWORD = "correct-horse-battery-staple"


class PortalAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PortalAccount

    name = factory.Sequence(lambda n: f"Account {n}")
    slug = factory.Sequence(lambda n: f"account-{n}")
    partner_licenses = 10
    customer_licenses = 10
    employee_licenses = 10


class RoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Role

    portal_account = factory.SubFactory(PortalAccountFactory)
    name = factory.Sequence(lambda n: f"Role {n}")
    user_type = UserType.PARTNER
    active = True


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    portal_account = factory.SubFactory(PortalAccountFactory)
    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"contact{n}@example.com")
    crm_account_name = "Acme Corp"


class StaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    kind = UserKind.TECHNICIAN
    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"staff{n}@mssp.example")
    is_superuser = factory.LazyAttribute(lambda o: o.kind == UserKind.MSSP_ADMIN)
    password = factory.django.Password(PASSWORD)


class PortalUserFactory(factory.django.DjangoModelFactory):
    """A portal user in a given state, built directly (tests of the lifecycle build theirs
    through accounts.lifecycle). The user type is the role's, as accounts.lifecycle makes it:
    give a role, or a user_type (the new role gets it); both must agree."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    kind = UserKind.PORTAL
    portal_account = factory.SubFactory(PortalAccountFactory)
    user_type = UserType.PARTNER
    contact = factory.Maybe(
        factory.LazyAttribute(lambda o: o.user_type != UserType.EMPLOYEE),
        factory.SubFactory(
            ContactFactory,
            portal_account=factory.SelfAttribute("..portal_account"),
            email=factory.SelfAttribute("..email"),
            name=factory.SelfAttribute("..name"),
        ),
        None,
    )
    role = factory.SubFactory(
        RoleFactory,
        portal_account=factory.SelfAttribute("..portal_account"),
        user_type=factory.SelfAttribute("..user_type"),
    )
    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"user{n}@customer.example")
    state = UserState.ENABLED
    invited_at = factory.LazyFunction(timezone.now)
    activated_at = factory.LazyAttribute(
        lambda o: timezone.now() if o.state != UserState.UNCONFIRMED else None
    )
    password = factory.django.Password(PASSWORD)

    @classmethod
    def _generate(cls, strategy, params):
        role = params.get("role")
        if role is not None:
            wanted = params.setdefault("user_type", role.user_type)
            if wanted != role.user_type:
                raise ValueError(
                    f"A {wanted} user cannot have the {role.user_type} role '{role.name}': "
                    "a user's type is their role's."
                )
        return super()._generate(strategy, params)
