"""Mail put straight into DeliveryService.accept, as the SMTP session would after its checks."""

from __future__ import annotations

from collections.abc import Sequence

from mailhost.model.envelope import Envelope, Reason, Refuse, Relay
from mailhost.model.names import EmailAddress
from mailhost.runtime import Runtime


async def queue_mail(
    rt: Runtime,
    sender: str,
    recipients: Sequence[EmailAddress],
    message: bytes,
    customer_id: int | None = None,
    domain_id: int | None = None,
) -> str:
    """Hosted recipients into their mailboxes, others relayed; returns the message id."""
    envelope = Envelope(sender, customer_id=customer_id, domain_id=domain_id)
    for recipient in recipients:
        verdict = await rt.services.inbound.lookup(recipient)
        if isinstance(verdict, Refuse):
            assert verdict.reason is Reason.RELAY_DENIED, verdict  # the policy refuses the rest
            envelope.add(recipient, Relay(recipient))
        else:
            envelope.add(recipient, verdict)
    await rt.services.delivery.accept(envelope, message)
    return envelope.id
