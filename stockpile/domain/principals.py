"""What a principal may be given, and when a token request may change it.

Rules:

- A token carries every right of its principal: roles, clearance and grants belong to the
  principal, not to the token. So issuing a token never decides rights on the side.
- Issuing a token for an existing principal never changes its rights silently. Asking for exactly
  the rights it holds (or for none at all) issues a token for it as it is. Asking for more is
  refused unless the caller says ``widen``; then what is added is the difference, and the caller
  records it. Asking for less is refused too (the token would carry more than was asked): the
  principal is narrowed first, explicitly, or the rights are left out of the request.
- ``widen`` adds and never removes.
- A disabled principal is issued no token (it could not authenticate); it is enabled first.
- Need-to-know is handed on only by whoever holds it: a token that carries military clearance (for
  a new principal, a widened one, or one that holds it already) is issued only by a principal
  cleared itself. Otherwise an uncleared admin could mint a cleared token and read with it.
- Names beginning ``cli:`` are the command line's own attribution principals, and names beginning
  ``sensor:`` a sensor's (the automatic lot quarantine of a cold-chain excursion is recorded under
  ``sensor:<code>``): they hold no rights, are disabled, and no token is ever issued for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stockpile.domain.access import MILITARY
from stockpile.domain.errors import Conflict, Forbidden, Invalid

CLI_PREFIX = "cli:"
SENSOR_PREFIX = "sensor:"


@dataclass(frozen=True)
class Rights:
    """A principal's rights as they are written down: roles, clearance, grants by code."""

    roles: frozenset[str] = field(default_factory=frozenset)
    clearance: str | None = None
    warehouses: frozenset[str] = field(default_factory=frozenset)
    regions: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, roles=(), clearance: str | None = None, warehouses=(), regions=()) -> Rights:
        return cls(frozenset(roles or ()), clearance, frozenset(warehouses or ()), frozenset(regions or ()))

    def beyond(self, other: Rights) -> Rights:
        """What these rights hold that ``other`` does not."""
        return Rights(self.roles - other.roles, self.clearance if self.clearance != other.clearance else None,
                      self.warehouses - other.warehouses, self.regions - other.regions)

    def with_roles(self, roles: frozenset[str]) -> Rights:
        return Rights(roles, self.clearance, self.warehouses, self.regions)

    @property
    def empty(self) -> bool:
        return not (self.roles or self.clearance or self.warehouses or self.regions)

    def described(self) -> dict[str, list[str] | str]:
        """The non-empty parts, sorted (for messages and audit details)."""
        parts: dict[str, list[str] | str] = {}
        if self.roles:
            parts["roles"] = sorted(self.roles)
        if self.clearance:
            parts["clearance"] = self.clearance
        if self.warehouses:
            parts["warehouses"] = sorted(self.warehouses)
        if self.regions:
            parts["regions"] = sorted(self.regions)
        return parts

    def text(self) -> str:
        return "; ".join(f"{k} {v if isinstance(v, str) else ', '.join(v)}" for k, v in self.described().items())


def reserved_name(name: str) -> bool:
    """The command line attributes its actions to ``cli:<user>``, a sensor's rules theirs to
    ``sensor:<code>``; nobody else may use such a name."""
    return name.startswith((CLI_PREFIX, SENSOR_PREFIX))


def rights_to_add(name: str, current: Rights | None, asked: Rights | None, *, widen: bool,
                  disabled: bool = False) -> Rights:
    """What issuing a token for ``name`` adds to the principal (empty: a token for it as it is).

    ``current`` is ``None`` for a principal that does not exist yet (it is created with ``asked``);
    ``asked`` is ``None`` when the request names no rights. Asked rights without roles keep the
    principal's roles. Raises ``Invalid`` or ``Conflict``: nothing is to be written then.
    """
    if reserved_name(name):
        raise Invalid.field("principal", f"names beginning {CLI_PREFIX!r} or {SENSOR_PREFIX!r} are reserved for "
                                         "the attribution of the command line and of sensors, and hold no tokens")
    if current is None:
        if asked is None or not asked.roles:
            raise Invalid.field("roles", f"{name} does not exist yet: give its roles")
        return asked
    if disabled:
        raise Conflict(f"{name} is disabled: enable it before issuing it a token")
    if asked is None:
        return Rights()
    if not asked.roles:
        asked = asked.with_roles(current.roles)
    added, lacking = asked.beyond(current), current.beyond(asked)
    if widen:
        return added
    if not added.empty:
        raise Conflict(f"{name} exists and this would widen it (adds {added.text()}); every token of {name} "
                       "would carry that. Confirm it with widen, or use another name",
                       would_add=added.described())
    if not lacking.empty:
        raise Conflict(f"{name} also holds {lacking.text()}, and a token carries all of its principal's rights. "
                       f"Leave the rights out to issue a token for {name} as it is, or remove them first",
                       also_holds=lacking.described())
    return Rights()


def require_may_issue(issuer_cleared: bool, name: str, clearance: str | None) -> None:
    """A token carrying military clearance is issued only by a cleared principal (the trusted
    command line is cleared)."""
    if clearance == MILITARY and not issuer_cleared:
        raise Forbidden(f"a token for {name} would carry military clearance: only a principal cleared for "
                        "military stock may issue it")
