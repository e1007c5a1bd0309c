"""An unreachable database raises Unavailable with context; a restarted PostgreSQL is reconnected."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbcloud.adapters.store import open_state_store
from lbcloud.domain.errors import ConfigError, Unavailable
from tests.services.postgres import PostgresServer, free_port

from .conftest import new_submission


@pytest.mark.postgres
def test_store_survives_a_postgres_restart_and_reports_the_outage(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    store = open_state_store(postgres_url)
    submission, _ = store.create_submission(new_submission())
    try:
        postgres_server.restart()
        # pooled connections died with the server; pre-ping replaces them transparently
        assert store.get_submission(submission.id) == submission

        postgres_server.stop()
        with pytest.raises(Unavailable) as raised:
            store.get_submission(submission.id)
        assert "127.0.0.1" in str(raised.value)
        assert f"reading submission {submission.id}" in str(raised.value)
        with pytest.raises(Unavailable):
            store.create_submission(new_submission(team="Beta"))
    finally:
        postgres_server.start()

    assert store.get_submission(submission.id) == submission
    assert store.create_submission(new_submission(team="Beta"))[1]
    assert len(store.list_submissions()) == 2
    store.close()


def test_opening_an_unreachable_postgres_raises_unavailable_without_the_password() -> None:
    url = f"postgresql://lbcloud:s3cret@127.0.0.1:{free_port()}/lbcloud"
    with pytest.raises(Unavailable) as raised:
        open_state_store(url)
    assert "s3cret" not in str(raised.value)
    assert "migrating the schema" in str(raised.value)


def test_sqlite_database_in_an_impossible_folder_raises_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(Unavailable, match="not-a-folder"):
        open_state_store(f"sqlite:///{blocker}/lbcloud.db")


@pytest.mark.parametrize("url", ["mysql://db/lbcloud", "not a url"])
def test_unsupported_or_malformed_urls_raise_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        open_state_store(url)
