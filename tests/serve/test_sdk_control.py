"""The SDK in every form: notices reach the consumer (as ``.notices`` and a warning), and the
control port's access requests work over HTTP and locally."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

import quanta
from conftest import Served
from quanta.control.lifecycle import deprecate, reactivate
from quanta.sdk import QuantaNotice
from quanta.sidecar.core import ProductRetiredError

SQL = "SELECT count(*) AS n FROM people.plays"


def test_every_client_hears_of_a_deprecation(served: Served) -> None:
    sidecar = served.context.sidecar
    deprecate(sidecar, sidecar.operator(), "quanta://people/plays",
              date.today() + timedelta(days=30), "quanta://people/listeners",
              reason="plays move to the listening domain → see the café notes")
    clients = [quanta.connect(served.http, token=served.tokens["alice"]),
               quanta.connect(served.flight, token=served.tokens["alice"]),
               quanta.connect(served.mesh, principal="alice")]
    try:
        for client in clients:
            with pytest.warns(QuantaNotice, match="people.plays is deprecated"):
                result = client.sql(SQL)
            assert result.column("n")[0].as_py() == 5
            assert "use quanta://people/listeners" in result.notices[0]
            assert "plays move to the listening domain" in result.notices[0]
    finally:
        reactivate(sidecar, sidecar.operator(), "quanta://people/plays")
        for client in clients[:2]:
            client.close()


def test_a_retired_product_raises_the_same_error_in_every_form(served: Served) -> None:
    from quanta.control.lifecycle import retire

    sidecar = served.context.sidecar
    deprecate(sidecar, sidecar.operator(), "quanta://people/plays",
              date.today() + timedelta(days=30))  # a product is deprecated before it retires
    retire(sidecar, sidecar.operator(), "quanta://people/plays", "quanta://people/listeners")
    try:
        http = quanta.connect(served.http, token=served.tokens["alice"])
        with pytest.raises(ProductRetiredError, match="retired"):
            http.sql(SQL)
        http.close()
        local = quanta.connect(served.mesh, principal="alice")
        with pytest.raises(ProductRetiredError, match="retired"):
            local.sql(SQL)
    finally:
        reactivate(sidecar, sidecar.operator(), "quanta://people/plays")


def test_access_requests_through_the_sdk(served: Served) -> None:
    tokens = served.context.sidecar.tokens
    asker = quanta.connect(served.http, token=tokens.create("sdk_bob")[0])
    owner = quanta.connect(served.http, token=tokens.create("sdk_olga", ["people"])[0])
    try:
        asked = asker.request_access("quanta://people/listeners", "royalty audit")
        assert asked["state"] == "pending" and asked["requester"] == "sdk_bob"
        pending = owner.access_requests("pending")
        assert asked["id"] in [r["id"] for r in pending]
        approved = owner.approve(asked["id"], expires="1h", comment="ok")
        assert approved["state"] == "approved" and approved["grant_id"]
        assert asker.sql("SELECT count(*) AS n FROM people.listeners").column("n")[0].as_py() > 0
        with pytest.raises(Exception, match="approved already"):
            owner.deny(asked["id"], "too late")
    finally:
        asker.close()
        owner.close()


def test_the_control_port_through_the_sdk(served: Served) -> None:
    tokens = served.context.sidecar.tokens
    owner = quanta.connect(served.http, token=tokens.create("sdk_owner", ["people"])[0])
    reader = quanta.connect(served.http, token=tokens.create("sdk_reader")[0])
    dpo = quanta.connect(served.http, token=tokens.create("sdk_dpo", ["privacy_office"])[0])
    local = quanta.connect(served.mesh)  # the operator
    try:
        owner.grant("sdk_reader", "quanta://people/listeners", expires="1h")
        assert reader.sql("SELECT count(*) AS n FROM people.listeners").column("n")[0].as_py()
        assert len(owner.revoke("sdk_reader", "quanta://people/listeners")) == 1
        with pytest.raises(Exception, match="may not read"):
            reader.sql("SELECT count(*) AS n FROM people.listeners")
        sunset = (date.today() + timedelta(days=5)).isoformat()
        assert owner.set_lifecycle("quanta://people/plays", "deprecated", sunset)[
            "state"] == "deprecated"
        assert local.set_lifecycle("quanta://people/plays", "active")["state"] == "active"
        assert dpo.erase("listener_id", "l3", dry_run=True)["rows_removed"] >= 1
        assert local.erase("listener_id", "l3", dry_run=True)["dry_run"]
        with pytest.raises(Exception, match="may not erase"):
            owner.erase("listener_id", "l3", dry_run=True)
    finally:
        for c in (owner, reader, dpo):
            c.close()
