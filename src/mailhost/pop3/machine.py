"""The POP3 session state machine (RFC 1939 §3): AUTHORIZATION → TRANSACTION → UPDATE, sans I/O.

The machine takes lines or parsed commands and returns actions for the driver:
bytes to send, and work only the driver can do (authenticate, lock and list the
mailbox, stream a message, delete, start TLS, close). The driver reports the
outcome of that work back through `auth_result`, `mailbox_opened`, `committed`,
and the other feedback methods, which return the next actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from mailhost.interfaces import MessageUid, StoredMessage
from mailhost.model.logins import Authenticated, AuthOutcome, BadCredentials
from mailhost.model.records import LoginRecord, MailboxRef
from mailhost.pop3 import responses as r
from mailhost.pop3.commands import (
    Auth,
    BadCommand,
    Capa,
    Command,
    Dele,
    List,
    Noop,
    Pass,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    parse_command,
    parse_sasl_plain,
    strip_line_ending,
)

# Consecutive unusable lines before we stop talking to a client that is not speaking POP3.
MAX_BAD_COMMANDS = 20


class Phase(Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Check credentials; report with `auth_result`."""

    login: str
    password: str


@dataclass(frozen=True, slots=True)
class OpenMailbox:
    """Enter `store.exclusive(mailbox)` and list it; report `mailbox_opened` or `mailbox_in_use`."""

    login: LoginRecord
    mailbox: MailboxRef


@dataclass(frozen=True, slots=True)
class Stream:
    """Send `status`, then the message through a DotStuffer(top_lines); no report needed."""

    uid: MessageUid
    top_lines: int | None
    status: bytes


@dataclass(frozen=True, slots=True)
class Commit:
    """Delete these messages (RFC 1939 §6 UPDATE); report `committed` or `failed`."""

    uids: tuple[MessageUid, ...]


@dataclass(frozen=True, slots=True)
class StartTls:
    """Drop buffered plaintext, run the TLS handshake, then call `tls_started`."""


@dataclass(frozen=True, slots=True)
class Close:
    """Release the mailbox (without deleting anything) and close the connection."""


Action = Send | Authenticate | OpenMailbox | Stream | Commit | StartTls | Close


class _Waiting(Enum):
    """What the machine is waiting for besides the next command."""

    NOTHING = "nothing"
    SASL_RESPONSE = "sasl response"
    AUTH_RESULT = "auth result"
    MAILBOX = "mailbox"
    COMMIT = "commit"
    TLS = "tls"


class Pop3Machine:
    """One client's POP3 session; see the module docstring for the protocol with the driver."""

    def __init__(
        self,
        *,
        hostname: str,
        tls_active: bool,
        tls_available: bool,
        allow_plaintext_auth: bool,
    ) -> None:
        self.hostname = hostname
        self.phase = Phase.AUTHORIZATION
        self.tls_active = tls_active
        self._tls_available = tls_available
        self._allow_plaintext_auth = allow_plaintext_auth
        self._waiting = _Waiting.NOTHING
        self._user: str | None = None
        self._bad_commands = 0
        self._pending_login: LoginRecord | None = None
        self.login: LoginRecord | None = None
        self.mailbox: MailboxRef | None = None
        self._messages: tuple[StoredMessage, ...] = ()
        self._deleted: set[int] = set()

    def greeting(self) -> bytes:
        return r.GREETING.render(hostname=self.hostname)

    @property
    def awaiting_sasl_response(self) -> bool:
        return self._waiting is _Waiting.SASL_RESPONSE

    def receive(self, line: bytes) -> list[Action]:
        """Handle one line from the client: a command, or a SASL continuation response."""
        if self._waiting is _Waiting.SASL_RESPONSE:
            self._waiting = _Waiting.NOTHING
            response = strip_line_ending(line)
            if response == b"*":
                return [Send(r.AUTH_CANCELLED.render())]
            return self._sasl_plain(response)
        parsed = parse_command(line)
        if isinstance(parsed, BadCommand):
            return self._bad(r.BAD_COMMAND.render(reason=parsed.reason))
        return self.handle(parsed)

    def line_too_long(self) -> list[Action]:
        """The driver read a line beyond its limit and discarded it."""
        self._waiting = _Waiting.NOTHING  # an over-long SASL response ends the exchange
        return self._bad(r.LINE_TOO_LONG.render())

    def handle(self, command: Command) -> list[Action]:
        self._require(_Waiting.NOTHING)
        if isinstance(command, Capa):
            return self._ok(self._capabilities())
        if isinstance(command, Noop):
            return self._ok(r.NOOP.render())
        if self.phase is Phase.AUTHORIZATION:
            return self._authorization(command)
        return self._transaction(command)

    def auth_result(self, outcome: AuthOutcome) -> list[Action]:
        self._require(_Waiting.AUTH_RESULT)
        self._waiting = _Waiting.NOTHING
        if isinstance(outcome, BadCredentials):
            return [Send(r.BAD_LOGIN.render())]
        assert isinstance(outcome, Authenticated)
        if outcome.login.mailbox is None:
            return [Send(r.NO_MAILBOX.render(login=outcome.login.address))]
        self._waiting = _Waiting.MAILBOX
        self._pending_login = outcome.login
        return [OpenMailbox(outcome.login, outcome.login.mailbox)]

    def mailbox_opened(self, messages: Sequence[StoredMessage]) -> list[Action]:
        """The driver holds the mailbox exclusively and listed it (arrival order)."""
        self._require(_Waiting.MAILBOX)
        self._waiting = _Waiting.NOTHING
        login, self._pending_login = self._pending_login, None
        assert login is not None and login.mailbox is not None
        self.phase = Phase.TRANSACTION
        self.login, self.mailbox = login, login.mailbox
        self._messages = tuple(messages)
        count, size = self._totals()
        return [Send(r.LOGGED_IN.render(login=login.address, count=count, size=size))]

    def mailbox_in_use(self) -> list[Action]:
        # RFC 2449 §8.1.2: [IN-USE]; the session stays in AUTHORIZATION and may retry.
        self._require(_Waiting.MAILBOX)
        self._waiting = _Waiting.NOTHING
        self._pending_login = None
        return [Send(r.IN_USE.render())]

    def tls_started(self) -> None:
        # RFC 2595 §4: after the handshake the client starts over with CAPA and a login.
        self._require(_Waiting.TLS)
        self._waiting = _Waiting.NOTHING
        self.tls_active = True
        self._user = None

    def committed(self) -> list[Action]:
        self._require(_Waiting.COMMIT)
        self._waiting = _Waiting.NOTHING
        return [
            Send(r.BYE_UPDATED.render(hostname=self.hostname, count=len(self._deleted))),
            Close(),
        ]

    def failed(self, incident: str) -> list[Action]:
        """The driver's work for the last action raised; `incident` names the log entry."""
        waiting, self._waiting = self._waiting, _Waiting.NOTHING
        self._pending_login = None
        if waiting is _Waiting.COMMIT:
            return [Send(r.NOT_REMOVED.render(incident=incident)), Close()]
        if waiting is _Waiting.TLS:
            return [Close()]  # mid-handshake there is no channel left to reply on
        return [Send(r.INTERNAL_ERROR.render(incident=incident))]

    def _authorization(self, command: Command) -> list[Action]:
        if isinstance(command, Quit):
            return [Send(r.BYE.render(hostname=self.hostname)), Close()]
        if isinstance(command, Stls):
            return self._stls()
        if not isinstance(command, User | Pass | Auth):
            return self._bad(r.WRONG_STATE.render())
        if not self._login_allowed:
            return self._bad(r.TLS_REQUIRED.render())
        if isinstance(command, User):
            self._user = command.name
            return self._ok(r.USER_ACCEPTED.render())
        if isinstance(command, Pass):
            return self._pass(command)
        return self._auth(command)

    def _stls(self) -> list[Action]:
        if self.tls_active:
            return self._bad(r.TLS_ACTIVE.render())
        if not self._tls_available:
            return self._bad(r.TLS_UNAVAILABLE.render())
        self._waiting = _Waiting.TLS
        return [Send(r.STLS_BEGIN.render()), StartTls()]

    def _pass(self, command: Pass) -> list[Action]:
        user, self._user = self._user, None  # RFC 1939 §7: a failed PASS needs a new USER
        if user is None:
            return self._bad(r.PASS_WITHOUT_USER.render())
        return self._authenticate(user, command.password)

    def _auth(self, command: Auth) -> list[Action]:
        self._user = None
        if command.mechanism is None:
            # Listing mechanisms on a bare AUTH is RFC 1734 practice some clients still use.
            return self._ok(r.multiline(r.SASL_MECHANISMS.render(), [b"PLAIN"]))
        if command.mechanism != "PLAIN":
            return self._bad(r.UNSUPPORTED_MECHANISM.render())
        if command.initial_response is None:
            self._waiting = _Waiting.SASL_RESPONSE
            return [Send(b"+ \r\n")]  # RFC 5034 §4: empty challenge for PLAIN
        # RFC 5034 §4: "=" stands for an empty initial response.
        initial = command.initial_response.encode("utf-8")
        return self._sasl_plain(b"" if initial == b"=" else initial)

    def _sasl_plain(self, response: bytes) -> list[Action]:
        credentials = parse_sasl_plain(response)
        if credentials is None:
            return self._bad(r.BAD_SASL_RESPONSE.render())
        return self._authenticate(credentials.login, credentials.password)

    def _authenticate(self, login: str, password: str) -> list[Action]:
        self._bad_commands = 0
        self._waiting = _Waiting.AUTH_RESULT
        return [Authenticate(login, password)]

    def _transaction(self, command: Command) -> list[Action]:
        if isinstance(command, Stat):
            count, size = self._totals()
            return self._ok(r.STAT.render(count=count, size=size))
        if isinstance(command, List | Uidl):
            return self._listing(command)
        if isinstance(command, Retr | Top | Dele):
            return self._message_command(command)
        if isinstance(command, Rset):
            self._deleted.clear()
            count, size = self._totals()
            return self._ok(r.RESET.render(count=count, size=size))
        if isinstance(command, Quit):
            return self._quit()
        return self._bad(r.WRONG_STATE.render())

    def _listing(self, command: List | Uidl) -> list[Action]:
        def entry(msg: int) -> tuple[int, str | int]:
            message = self._messages[msg - 1]
            return msg, message.size if isinstance(command, List) else message.uid

        if command.msg is not None:
            if not self._exists(command.msg):
                return self._bad(r.NO_SUCH_MESSAGE.render())
            msg, value = entry(command.msg)
            if isinstance(command, List):
                return self._ok(r.LIST_ONE.render(msg=msg, size=value))
            return self._ok(r.UIDL_ONE.render(msg=msg, uid=value))
        # RFC 1939 §5 scan listings and §7 unique-id listings: "msg value" per line.
        lines = [
            b"%d %s" % (msg, str(value).encode("utf-8"))
            for msg, value in map(entry, self._live_numbers())
        ]
        if isinstance(command, Uidl):
            return self._ok(r.multiline(r.UIDL_FOLLOWS.render(), lines))
        count, size = self._totals()
        return self._ok(r.multiline(r.LIST_FOLLOWS.render(count=count, size=size), lines))

    def _message_command(self, command: Retr | Top | Dele) -> list[Action]:
        if not self._exists(command.msg):
            if command.msg in self._deleted and isinstance(command, Dele):
                return self._bad(r.ALREADY_DELETED.render(msg=command.msg))
            return self._bad(r.NO_SUCH_MESSAGE.render())
        message = self._messages[command.msg - 1]
        self._bad_commands = 0
        if isinstance(command, Dele):
            self._deleted.add(command.msg)
            return [Send(r.DELETED.render(msg=command.msg))]
        if isinstance(command, Top):
            return [Stream(message.uid, command.lines, r.TOP_FOLLOWS.render())]
        return [Stream(message.uid, None, r.RETR_FOLLOWS.render(size=message.size))]

    def _quit(self) -> list[Action]:
        # RFC 1939 §6: only QUIT from TRANSACTION enters UPDATE and removes messages.
        self.phase = Phase.UPDATE
        if not self._deleted:
            return [Send(r.BYE_UPDATED.render(hostname=self.hostname, count=0)), Close()]
        self._waiting = _Waiting.COMMIT
        uids = tuple(self._messages[msg - 1].uid for msg in sorted(self._deleted))
        return [Commit(uids)]

    def _capabilities(self) -> bytes:
        # RFC 2449 §6; RFC 3206 §6 AUTH-RESP-CODE; RFC 2595 §4 STLS only before TLS.
        # RFC 2449 §5: what AUTHORIZATION announces is announced in TRANSACTION too.
        names = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self._login_allowed:
            names += ["USER", "SASL PLAIN"]
        if self._tls_available and not self.tls_active:
            names.append("STLS")
        return r.multiline(r.CAPA_FOLLOWS.render(), [name.encode("ascii") for name in names])

    @property
    def _login_allowed(self) -> bool:
        return self.tls_active or self._allow_plaintext_auth

    def _exists(self, msg: int) -> bool:
        return 1 <= msg <= len(self._messages) and msg not in self._deleted

    def _live_numbers(self) -> list[int]:
        return [msg for msg in range(1, len(self._messages) + 1) if msg not in self._deleted]

    def _totals(self) -> tuple[int, int]:
        live = self._live_numbers()
        return len(live), sum(self._messages[msg - 1].size for msg in live)

    def _ok(self, data: bytes) -> list[Action]:
        self._bad_commands = 0
        return [Send(data)]

    def _bad(self, data: bytes) -> list[Action]:
        self._bad_commands += 1
        if self._bad_commands >= MAX_BAD_COMMANDS:
            return [Send(r.TOO_MANY_ERRORS.render()), Close()]
        return [Send(data)]

    def _require(self, waiting: _Waiting) -> None:
        if self._waiting is not waiting:
            raise RuntimeError(f"POP3 driver bug: machine waits for {self._waiting.value}")
