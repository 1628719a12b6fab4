"""Global product addresses: quanta://domain/product[/port][@release] and domain.product[.port]."""

from __future__ import annotations

import pytest

from quanta.address import Address, check_identifier, is_identifier
from quanta.errors import AddressError, QuantaError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("quanta://listening/play_events", Address("listening", "play_events")),
        ("quanta://listening/play_events/plays", Address("listening", "play_events", "plays")),
        ("quanta://listening/play_events@3", Address("listening", "play_events", None, 3)),
        ("quanta://listening/play_events/plays@12",
         Address("listening", "play_events", "plays", 12)),
        ("listening.play_events", Address("listening", "play_events")),
        ("listening.play_events.plays", Address("listening", "play_events", "plays")),
        ("listening.play_events.plays@2", Address("listening", "play_events", "plays", 2)),
        ("  quanta://d2/p_1  ", Address("d2", "p_1")),
    ],
)
def test_parse_accepts_both_spellings(text: str, expected: Address) -> None:
    assert Address.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("quanta://shop/orders", "quanta://shop/orders"),
        ("quanta://shop/orders/orders", "quanta://shop/orders/orders"),
        ("quanta://shop/orders/orders@7", "quanta://shop/orders/orders@7"),
        ("quanta://shop/orders@1", "quanta://shop/orders@1"),
        ("shop.orders.orders@7", "quanta://shop/orders/orders@7"),
        ("shop.orders", "quanta://shop/orders"),
    ],
)
def test_str_is_the_canonical_address_and_parses_back(text: str, canonical: str) -> None:
    address = Address.parse(text)
    assert str(address) == canonical
    assert Address.parse(str(address)) == address


def test_product_key_and_with_port() -> None:
    address = Address.parse("quanta://shop/orders@4")
    assert address.product_key == "shop.orders"
    narrowed = address.with_port("lines")
    assert narrowed == Address("shop", "orders", "lines", 4)
    assert str(narrowed) == "quanta://shop/orders/lines@4"


@pytest.mark.parametrize(
    ("text", "in_message", "in_hint"),
    [
        ("http://shop/orders", "does not start with quanta://", "quanta://<domain>/<product>"),
        ("s3://bucket/orders", "does not start with quanta://", "quanta://<domain>/<product>"),
        ("quanta://Shop/orders", "domain 'Shop' is not a valid name", "snake_case"),
        ("quanta://shop/Orders", "product 'Orders' is not a valid name", "snake_case"),
        ("quanta://shop/orders/Lines", "port 'Lines' is not a valid name", "snake_case"),
        ("quanta://shop/order-lines", "product 'order-lines' is not a valid name", "snake_case"),
        ("my-shop.orders", "domain 'my-shop' is not a valid name", "snake_case"),
        ("quanta://shop/1orders", "product '1orders' is not a valid name", "starting with a"),
        ("quanta://shop/orders@latest", "release 'latest'", "release number after '@'"),
        ("quanta://shop/orders@", "release ''", "release number after '@'"),
        ("quanta://shop/orders@-1", "release '-1'", "release number after '@'"),
        ("shop.orders@v2", "release 'v2'", "release number after '@'"),
        ("quanta://shop/orders/orders/extra", "must name a domain and a product", "e.g."),
        ("shop.orders.orders.extra", "must name a domain and a product", "e.g."),
        ("quanta://shop", "must name a domain and a product", "e.g."),
        ("shop", "must name a domain and a product", "e.g."),
        ("quanta://shop//orders", "must name a domain and a product", "e.g."),
        ("", "must name a domain and a product", "e.g."),
    ],
)
def test_bad_addresses_raise_address_error_with_hint(
    text: str, in_message: str, in_hint: str
) -> None:
    with pytest.raises(AddressError) as info:
        Address.parse(text)
    error = info.value
    assert isinstance(error, QuantaError)
    assert error.code == "address_invalid"
    assert in_message in error.message
    assert error.hint and in_hint in error.hint
    assert error.render() == f"{error.message} ({error.hint})"


def test_non_ascii_digit_release_is_an_address_error() -> None:
    with pytest.raises(AddressError):
        Address.parse("quanta://shop/orders@²")


@pytest.mark.parametrize("name", ["orders", "o", "order_lines_2", "a" * 63])
def test_valid_identifiers(name: str) -> None:
    assert is_identifier(name)
    assert check_identifier(name, "product") == name


@pytest.mark.parametrize(
    "name", ["Orders", "order-lines", "2orders", "_orders", "order lines", "", "a" * 64, "café"]
)
def test_invalid_identifiers(name: str) -> None:
    assert not is_identifier(name)
    with pytest.raises(AddressError) as info:
        check_identifier(name, "product")
    assert info.value.message == f"product {name!r} is not a valid name"
    assert info.value.hint and "snake_case" in info.value.hint


def test_trailing_newline_is_not_an_identifier() -> None:
    assert not is_identifier("orders\n")
    with pytest.raises(AddressError):
        Address.parse("quanta://shop/orders\n/lines")


def test_release_zero_does_not_exist() -> None:
    with pytest.raises(AddressError) as info:
        Address.parse("quanta://listening/play_events@0")
    assert info.value.hint == "releases are numbered from 1"
