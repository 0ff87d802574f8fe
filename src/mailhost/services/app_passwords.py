"""App passwords: a domain user's named passwords for mail programs (POP3, submission).

The user makes them on their own page and sees each once; the user and the domain's
managers (domain login, customer, provider) list and revoke them. They are checked by
services/authentication.py, which takes them in place of the account password on the
mail protocols (and, with two-factor on, only them), never on the panel.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime

from mailhost.errors import InvalidInput, LimitReached, NotFound, NotPermitted
from mailhost.interfaces import UnitOfWorkFactory
from mailhost.model.actors import Actor, UserActor
from mailhost.model.names import EmailAddress
from mailhost.model.records import AppPasswordRecord
from mailhost.model.two_factor import APP_PASSWORD_PREFIX, new_app_password, normalised_app_password
from mailhost.services import access
from mailhost.services.passwords import Passwords
from mailhost.services.usage import utc_now

# A mail login verifies only the app passwords whose first group matches, so this
# bounds storage and listing, not the work of a login.
MAX_APP_PASSWORDS = 20


def parse_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not 1 <= len(name) <= 100:
        raise InvalidInput("an app password's name must be 1 to 100 characters")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise InvalidInput("an app password's name must not contain control characters")
    return name


class AppPasswordService:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        passwords: Passwords,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._units = units
        self._passwords = passwords
        self._clock = clock

    async def create(
        self, actor: Actor, address: EmailAddress, name: str
    ) -> tuple[AppPasswordRecord, str]:
        """A new app password for the user's own login; returned once, as shown to type it
        (four groups of four letters), and never stored but as an argon2id hash."""
        if not isinstance(actor, UserActor):
            # Whoever sees a password can use it: only its user does.
            raise NotPermitted("only the user may create app passwords; managers may revoke them")
        name = parse_name(name)
        secret = new_app_password()
        letters = normalised_app_password(secret)
        assert letters is not None  # new_app_password writes what normalisation reads
        password_hash = await self._passwords.hash(letters)
        async with self._units() as uow:
            user = access.visible_user(actor, await uow.directory.user_by_address(address), address)
            held = await uow.app_passwords.of_user(user.id)
            if len(held) >= MAX_APP_PASSWORDS:
                raise LimitReached(
                    f"{user.address} may hold {MAX_APP_PASSWORDS} app passwords; revoke one first"
                )
            record = await uow.app_passwords.add(
                user.id,
                str(user.address),
                name,
                letters[:APP_PASSWORD_PREFIX],
                password_hash,
                self._clock(),
            )
            await uow.audit.record(
                str(actor), "app_password.add", f"{user.address} {name}", user.customer_id
            )
            await uow.commit()
        return record, secret

    async def app_passwords(
        self, actor: Actor, address: EmailAddress
    ) -> Sequence[AppPasswordRecord]:
        async with self._units() as uow:
            user = access.visible_user(actor, await uow.directory.user_by_address(address), address)
            return await uow.app_passwords.of_user(user.id)

    async def revoke(self, actor: Actor, address: EmailAddress, app_password_id: int) -> str:
        """Delete one of the user's app passwords; it stops working at once (every login
        reads the user's app passwords afresh). Returns its name."""
        async with self._units() as uow:
            user = access.visible_user(actor, await uow.directory.user_by_address(address), address)
            held = {p.id: p for p in await uow.app_passwords.of_user(user.id)}
            found = held.get(app_password_id)
            if found is None or not await uow.app_passwords.remove(user.id, found.id):
                raise NotFound(f"{address} has no app password {app_password_id}")
            await uow.audit.record(
                str(actor), "app_password.revoke", f"{user.address} {found.name}", user.customer_id
            )
            await uow.commit()
        return found.name
