"""The seam between the SMTP transaction and its rules: one engine per listener.

smtp/session.py runs the same transaction for the MX and for submission and
asks its engine at each step; the inbound policy (who may receive here) and
the submission policy (what an authenticated user may send) are the two
engines. A refusal is a normal answer, never an exception.
"""

from __future__ import annotations

from typing import Protocol

from mailhost.model.envelope import Client, Envelope, Refuse, Verdict
from mailhost.model.names import EmailAddress


class PolicyEngine(Protocol):
    async def check_sender(
        self, client: Client, sender: str, declared_size: int | None
    ) -> Envelope | Refuse:
        """MAIL FROM: a new envelope for `sender` ("" for the null sender), or why not."""
        ...

    async def check_recipient(
        self, client: Client, envelope: Envelope, recipient: EmailAddress
    ) -> Verdict:
        """RCPT TO: deliver into a mailbox, relay to the address, or refuse with a reason."""
        ...

    async def check_message(
        self, client: Client, envelope: Envelope, message: bytes
    ) -> Refuse | None:
        """After DATA, before anything is stored: may this whole message be accepted?

        May take a share of a limit (the envelope records it); `release` gives it back.
        """
        ...

    async def release(self, envelope: Envelope) -> None:
        """The message passed `check_message` but was not accepted after all."""
        ...
