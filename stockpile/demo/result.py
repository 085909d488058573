"""What a demo load answers: the counts of what it loaded and the demo tokens, shown once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass
class DemoResult:
    """What the demo loaded, and the demo tokens (shown once: only their hashes are stored)."""

    seed: int
    counts: dict[str, int]
    tokens: list[tuple[str, str, str]]  # (role, principal name, token)
    seconds: float
    tokens_expire_at: datetime | None = None
    api_url: str = "http://127.0.0.1:8000"
    tokens_file: Path | None = None

    def token(self, role: str) -> str:
        return next(t for r, _, t in self.tokens if r == role)

    def report(self) -> str:
        n = self.counts
        lines = [
            f"demo reserve loaded (seed {self.seed}, {self.seconds:.1f} s): the fictional Republic of Valtara",
            f"  regions {n['regions']}, warehouses {n['warehouses']} ({n['suspended_warehouses']} suspended), "
            f"materials {n['materials']}, parties {n['parties']}",
            f"  lots {n['lots']} ({n['expired_lots']} expired with stock on hand, {n['expiring_30']} expiring "
            f"within 30 days), stock positions {n['positions']}",
            f"  movements {n['movements']}, transfers {n['transfers']} ({n['in_transit']} in transit)",
            "demo tokens (role  name  token) — shown only once, keep them"
            + (f"; they expire at {self.tokens_expire_at:%Y-%m-%d %H:%M} UTC:" if self.tokens_expire_at else ":"),
        ]
        lines += [f"{role}  {name}  {token}" for role, name, token in self.tokens]
        if self.tokens_file is not None:
            lines.append(f"(also written to {self.tokens_file})")
        lines.append(
            f'try: curl -H "Authorization: Bearer {self.token("admin")}" "{self.api_url}/api/v1/stock?limit=5"'
        )
        return "\n".join(lines)


def default_api_url() -> str:
    host = os.environ.get("STOCKPILE_HOST") or "127.0.0.1"
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1"
    return f"http://{host}:{os.environ.get('STOCKPILE_PORT') or 8000}"


def write_tokens(path: Path, issued: list[tuple[str, str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines(f"{role}  {name}  {token}\n" for role, name, token in issued)
    os.chmod(path, 0o600)
