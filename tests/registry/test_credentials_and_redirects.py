"""api.base_url's credentials go in an Authorization header only, to that origin only: no log line,
error, cycle detail, alert, database row or `doctor` line shows them. An alias's 301 is followed only
to the same scheme, host and port."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.peers import WebhookReceiver
from tests.support.workspace import Workspace
from watcher.config import ApiSettings
from watcher.config.secrets import split_credentials
from watcher.errors import ApiError
from watcher.registry.client import CtGovClient

A = "NCT04728893"
SECRET = "S3cretMirrorPw"


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://mirror-user:{SECRET}@")


def test_split_credentials_keeps_host_port_and_path() -> None:
    assert split_credentials("https://u:p%40ss@h.example.org:8443/api/v2?x=1") == (
        "https://h.example.org:8443/api/v2?x=1",
        ("u", "p@ss"),
    )
    assert split_credentials("https://h.example.org/api/v2") == ("https://h.example.org/api/v2", None)


def test_base_url_credentials_are_sent_as_a_header_and_shown_nowhere(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    workspace.write(
        trials=[A],
        channels={"hook": {"url": webhook.url()}},
        api={"max_retries": 0},
        extra="notify:\n  failure_alert_after: 1\n",
    )
    text = workspace.settings.read_text()
    workspace.settings.write_text(text.replace(fake_api.base_url, with_credentials(fake_api.base_url)))
    assert workspace.cli("check").code == 0
    expected = "Basic " + base64.b64encode(f"mirror-user:{SECRET}".encode()).decode()
    assert {h.get("Authorization") for h in fake_api.headers} == {expected}

    fake_api.fail(500, path_contains="/studies", times=5)
    fake_api.fail(500, path_contains="/version", times=5)
    failed = workspace.cli("check")
    doctor = workspace.cli("doctor")
    status = workspace.cli("status", "--json")
    workspace.cli("notify")
    shown = [failed.out, failed.err, doctor.out, doctor.err, status.out, status.err]
    shown += [r.body.decode() for r in webhook.requests]
    assert any("127.0.0.1" in text for text in shown), "the host is shown, only the credentials are not"
    for text in shown:
        assert SECRET not in text and "mirror-user" not in text
    database = Path(workspace.db_url.removeprefix("sqlite:///"))
    for path in database.parent.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path.name


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1:{other}/api/v2/studies/NCT03418623", "https://127.0.0.1:{port}/api/v2/studies/NCT03418623"],
)
def test_an_alias_301_to_another_port_or_scheme_is_not_followed(fake_api: FakeCtGov, location: str) -> None:
    """The fake answers an alias with a relative Location; a hostile mirror names another port."""
    settings = ApiSettings(base_url=fake_api.base_url, requests_per_second=0, max_retries=0, timeout=5)
    with CtGovClient(settings) as client:
        transport = client.transport
        other = int(fake_api.port) + 1
        real_retrying = transport._retrying

        def hostile(url: str, params: object, nct_id: object, **kwargs: object) -> object:
            response = real_retrying(url, params, nct_id, **kwargs)  # type: ignore[arg-type]
            if response.status_code == 301:
                response.headers["Location"] = location.format(other=other, port=fake_api.port)
            return response

        transport._retrying = hostile  # type: ignore[method-assign]
        fake_api.alias(A, "NCT03418623")
        with pytest.raises(ApiError, match="301 to an unexpected place"):
            transport.get(f"/studies/{A}", nct_id=A)
