"""Email channels (`mailto://`, `mailtos://`): our own multipart/alternative message over `smtplib`.

apprise cannot send an HTML email with a plain-text part we wrote: it always derives the text
part from the HTML (a table becomes one cell per line). Instead of patching apprise, we let it
do what it does well — read the channel's URL, including its table of known providers
(`mailtos://me:pw@gmail.com` → smtp.gmail.com:587, STARTTLS) — and read the resolved
connection from the plugin it returns, without changing anything in apprise. The message is
built with `email.message.EmailMessage` and sent with `smtplib`, every network wait bounded by
the channel's `timeout`.

If an apprise release ever stops exposing the fields read here (`APPRISE_EMAIL_FIELDS`, pinned by
a test), `smtp_target` returns None and the email goes out through apprise itself, with apprise's
own text part: a worse plain part, never a lost email.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Literal, NoReturn

from watcher.errors import NotifyError

APPRISE_EMAIL_FIELDS = (
    "smtp_host",
    "port",
    "secure",
    "secure_mode",
    "user",
    "password",
    "from_addr",
    "targets",
    "cc",
    "bcc",
    "reply_to",
    "names",
    "verify_certificate",
)
"""What we read from apprise's email plugin; tests/notify/test_mail.py fails when one moves."""

Mode = Literal["plain", "ssl", "starttls"]


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how one email channel delivers. Holds a password: never logged (repr hides it)."""

    host: str
    port: int
    mode: Mode
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    user: str | None = None
    password: str | None = None
    verify: bool = True

    def __repr__(self) -> str:
        return f"SmtpTarget({self.host}:{self.port}, {self.mode})"


def _address(value: Any, names: dict[str, Any]) -> Address:
    """apprise keeps an address as (name or False, addr) or a bare addr with its name in `names`."""
    if isinstance(value, (tuple, list)):
        name, addr = value
    else:
        name, addr = names.get(str(value)), value
    return Address(display_name=str(name) if name else "", addr_spec=str(addr))


def _addresses(values: Iterable[Any], names: dict[str, Any]) -> tuple[Address, ...]:
    return tuple(_address(v, names) for v in sorted(values, key=str))


def smtp_target(url: str) -> SmtpTarget | None:
    """The SMTP connection apprise would use for this `mailto(s)://` URL; None if apprise cannot
    parse it or no longer exposes the fields we read (then apprise sends the email itself)."""
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    if plugin is None or not all(hasattr(plugin, field) for field in APPRISE_EMAIL_FIELDS):
        return None
    got: dict[str, Any] = {field: getattr(plugin, field) for field in APPRISE_EMAIL_FIELDS}
    names = dict(got["names"] or {})
    mode: Mode = "plain"
    if got["secure"] or got["secure_mode"] == "ssl":
        mode = "ssl" if got["secure_mode"] == "ssl" else "starttls"
    default_port = {"plain": 25, "ssl": 465, "starttls": 587}[mode]
    try:
        return SmtpTarget(
            host=str(got["smtp_host"]),
            port=int(got["port"] or default_port),
            mode=mode,
            sender=_address(got["from_addr"], names),
            to=_addresses(got["targets"], names),
            cc=_addresses(got["cc"], names),
            bcc=_addresses(got["bcc"], names),
            reply_to=_addresses(got["reply_to"], names),
            user=got["user"] or None,
            password=got["password"] or None,
            verify=bool(got["verify_certificate"]),
        )
    except (TypeError, ValueError):
        return None


def build_message(
    target: SmtpTarget, *, subject: str, html: str, plain: str, message_id: str | None = None
) -> EmailMessage:
    """multipart/alternative: our text part first, the HTML last (the one clients prefer)."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = target.sender
    message["To"] = target.to
    if target.cc:
        message["Cc"] = target.cc
    if target.reply_to:
        message["Reply-To"] = target.reply_to
    message["Date"] = formatdate(localtime=False)
    message["X-Application"] = "TrialWatch"
    if message_id:
        message["Message-ID"] = message_id
    message.set_content(plain)
    message.add_alternative(html, subtype="html")
    return message


def send_message(target: SmtpTarget, message: EmailMessage, *, timeout: float) -> None:
    """Deliver over SMTP; each network wait (connect, greeting, every reply) ends after `timeout`
    seconds. Raises NotifyError with a reason that names no credential."""
    if not target.to:
        raise NotifyError("the email channel has no recipient (add ?to=…)")
    context = ssl.create_default_context()
    if not target.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    recipients = [a.addr_spec for a in (*target.to, *target.cc, *target.bcc)]
    try:
        smtp: smtplib.SMTP = (
            smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=context)
            if target.mode == "ssl"
            else smtplib.SMTP(target.host, target.port, timeout=timeout)
        )
        with smtp:
            if target.mode == "starttls":
                smtp.starttls(context=context)
            if target.user and target.password:
                smtp.login(target.user, target.password)
            refused = smtp.send_message(message, from_addr=target.sender.addr_spec, to_addrs=recipients)
    except (OSError, smtplib.SMTPException) as exc:
        # smtplib turns a timed-out reply into SMTPServerDisconnected("… timed out")
        if not isinstance(exc, TimeoutError) and not isinstance(exc.__context__, TimeoutError):
            _refused(exc, target)
        raise NotifyError(f"the SMTP server {target.host}:{target.port} did not answer within {timeout:g} s") from None
    if refused:
        raise NotifyError(f"the SMTP server refused {len(refused)} recipient(s)")


def _refused(exc: Exception, target: SmtpTarget) -> NoReturn:
    """A refusal or a connection failure; a login refusal without the server's text."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        raise NotifyError(f"the SMTP server refused the login ({exc.smtp_code})") from None
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise NotifyError(f"the SMTP server refused the message: {exc.smtp_code} {reply[:200]}") from None
    raise NotifyError(f"cannot deliver to the SMTP server {target.host}:{target.port}: {type(exc).__name__}") from None
