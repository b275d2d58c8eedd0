"""The channel edge: hand one rendered message to its channel, within the channel's timeout.

Email channels go through `watcher.notify.mail` (our own multipart/alternative over smtplib),
JSON webhooks through `watcher.notify.hook` (apprise's envelope plus our document, over httpx),
every other channel through apprise's public API (`Apprise.add`, `Apprise.notify`). A send is
bounded: every network wait ends after the channel's `timeout` (apprise's documented `cto`/`rto`
URL arguments; `smtplib`'s socket timeout), and a timed-out send is a refusal like any other,
retried with backoff. Every error comes back redacted: a URL may hold a token.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

import structlog

from watcher.config import ChannelSettings
from watcher.config.channels import channel_kind
from watcher.config.secrets import redact, secret_parts
from watcher.errors import NotifyError, TrialWatchError
from watcher.notify.formats import Rendered

log = structlog.get_logger("watcher.notify.send")


def _join(url: str, arguments: Mapping[str, str]) -> str:
    if not arguments:
        return url
    query = "&".join(f"{k}={v}" for k, v in arguments.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


def with_timeout(url: str, seconds: float) -> str:
    """The URL with apprise's connect/read timeouts (`cto`, `rto`), unless the URL sets its own."""
    try:
        given = {k for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    except ValueError:
        given = set()
    return _join(url, {k: f"{seconds:g}" for k in ("cto", "rto") if k not in given})


def is_discord(url: str) -> bool:
    """apprise's `discord://` URL, or a Discord webhook URL given as is."""
    try:
        split = urlsplit(url)
    except ValueError:
        return False
    host = (split.hostname or "").lower()
    return split.scheme.lower() == "discord" or (
        split.scheme.lower() in ("http", "https")
        and host.endswith(("discord.com", "discordapp.com"))
        and "/api/webhooks/" in split.path
    )


class Sender:
    """Sends rendered messages to channels; every error comes back redacted."""

    def __init__(self, channels: Mapping[str, ChannelSettings], *, installation: str | None = None) -> None:
        self.channels = channels
        self.installation = installation
        """The database's installation id (`watcher.store.meta.installation_id`), in webhook keys and
        email Message-IDs, so two installations never share one."""

    def send(
        self,
        channel_name: str,
        rendered: Rendered,
        *,
        first_part: int = 0,
        on_part: Callable[[int], None] | None = None,
        message_id: int | None = None,
    ) -> None:
        """Send each part from `first_part` on; `on_part(n)` runs after part n was accepted.
        `message_id` (the outbox id) makes an email's Message-ID stable across retries."""
        channel = self.channels.get(channel_name)
        if channel is None:
            raise NotifyError(f"channel {channel_name!r} is not configured")
        secrets = secret_parts(channel.url)
        try:
            for index in range(first_part, len(rendered.parts)):
                self._send_one(channel, rendered, rendered.parts[index], message_id, self.installation)
                if on_part is not None:
                    on_part(index + 1)
        except NotifyError as exc:  # only the detail is redacted: a channel's name is never a secret
            raise NotifyError(f"channel {channel_name!r}: {redact(str(exc), secrets)}") from None
        except TrialWatchError:
            raise  # our own storage failing while recording a part is not the channel's refusal
        except Exception as exc:  # apprise, a plugin or our own code crashed: a refusal, retried
            detail = redact(f"{type(exc).__name__}: {exc}", secrets)
            # A crash may be a bug: its traceback goes to the log, redacted like every error (a
            # traceback quotes the exception, which may quote the URL), so no log.exception here.
            trace = redact("".join(traceback.format_exception(exc)), secrets)
            log.error("notify.send_crashed", channel=channel_name, error=detail, exception=trace)  # noqa: TRY400
            raise NotifyError(f"channel {channel_name!r}: {detail}") from None

    @staticmethod
    def _send_one(
        channel: ChannelSettings,
        rendered: Rendered,
        body: str,
        message_id: int | None = None,
        installation: str | None = None,
    ) -> None:
        timeout = channel.timeout.total_seconds()
        kind = channel_kind(channel.url)
        if kind == "json":
            from watcher.config.hookurl import hook_target
            from watcher.notify.hook import envelope, post

            hook = hook_target(channel.url)
            document = rendered.document or {}
            post(
                hook,
                envelope(rendered.title, body, document, hook.extras),
                timeout=timeout,
                message_id=document.get("message_id", message_id),
                installation=installation,
            )
            return
        if kind == "email" and rendered.body_format == "html" and rendered.plain is not None:
            from watcher.notify.mail import build_message, send_message, smtp_target

            target = smtp_target(channel.url)
            if target is not None:
                from watcher.notify.hook import idempotency_key

                header = (
                    f"<{idempotency_key(installation, message_id)}@{target.sender.domain}>"
                    if message_id is not None
                    else None
                )
                send_message(
                    target,
                    build_message(target, subject=rendered.title, html=body, plain=rendered.plain, message_id=header),
                    timeout=timeout,
                )
                return
        _send_apprise(channel, rendered, body, timeout)


def _send_apprise(channel: ChannelSettings, rendered: Rendered, body: str, timeout: float) -> None:
    """One apprise call; why a channel refused comes from the call's own result (apprise 2's
    `result.logs()`: this call's entries only, even while other channels' workers send)."""
    import apprise

    title = rendered.title
    if is_discord(channel.url):
        from watcher.notify.formats.text import without_mentions

        body, title = without_mentions(body), without_mentions(title)
    notifier = apprise.Apprise()
    if not notifier.add(with_timeout(channel.url, timeout)):
        raise NotifyError("apprise does not understand its URL")
    result = notifier.notify(body=body, title=title, body_format=rendered.body_format)
    if not result:
        messages = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
        detail = "; ".join(dict.fromkeys(messages)) or "the channel did not accept the message"
        raise NotifyError(detail)
