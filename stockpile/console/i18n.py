"""The console's languages: English (the source text) and Simplified Chinese.

Translations are gettext catalogues kept as ``translations/<locale>/LC_MESSAGES/messages.po``
(Babel's layout: ``pybabel extract -F babel.cfg`` and ``pybabel update`` maintain them). They are
compiled in memory when the process starts, so a clean checkout needs no build step and no
compiled ``.mo`` file is kept in the repository.

The language is chosen by ``?lang=en|zh`` (remembered in a cookie), else by ``Accept-Language``.
Numbers and dates are written per locale; quantities stay exact, in the material's decimals.
"""

from __future__ import annotations

import gettext
import io
import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

log = logging.getLogger("stockpile.console")

TRANSLATIONS = Path(__file__).parent / "translations"
LANG_COOKIE = "stockpile_console_lang"
# The console's language codes and the locale each stands for.
LANGUAGES = {"en": "en", "zh": "zh_Hans"}


@lru_cache(maxsize=None)
def catalogue(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of a language (English is the source text)."""
    if lang == "en":
        return gettext.NullTranslations()
    path = TRANSLATIONS / LANGUAGES[lang] / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        compiled = io.BytesIO()
        write_mo(compiled, read_po(po, locale=LANGUAGES[lang]))
    compiled.seek(0)
    return Translations(compiled)


@lru_cache(maxsize=1024)
def _untranslated(lang: str, message: str) -> None:
    """Say once per process that a message shown has no translation (the catalogue needs it)."""
    log.warning("untranslated console message lang=%s message=%r", lang, message)


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The language of a request: ``?lang=``, then the remembered choice, then ``Accept-Language``."""
    for asked in (query, cookie):
        if asked in LANGUAGES:
            return asked
    ranked = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        ranked.append((-weight, i, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "en"


@dataclass(frozen=True)
class Speaker:
    """What a template needs to speak one language: gettext and the locale's formats."""

    lang: str

    @property
    def locale(self) -> Locale:
        return Locale.parse(LANGUAGES[self.lang])

    @property
    def html_lang(self) -> str:
        return "zh-Hans" if self.lang == "zh" else "en"

    def gettext(self, message: str) -> str:
        if self.lang == "en" or not message:
            return message
        translated = catalogue(self.lang).gettext(message)
        if translated == message:
            _untranslated(self.lang, message)
        return translated

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The plural form for ``n``, with ``%(num)d`` filled in."""
        return catalogue(self.lang).ngettext(singular, plural, n) % {"num": n}

    def quantity(self, text: str | None, decimals: int | None = None) -> str:
        """A decimal quantity string written per locale, every digit kept."""
        if text is None or text == "":
            return ""
        try:
            value = Decimal(text)
        except InvalidOperation:
            return text
        places = decimals if decimals is not None else max(0, -value.as_tuple().exponent)
        pattern = "#,##0" + ("." + "0" * places if places else "")
        return format_decimal(value, format=pattern, locale=self.locale, decimal_quantization=False)

    def number(self, value, places: int = 0) -> str:
        pattern = "#,##0" + ("." + "0" * places if places else "")
        return format_decimal(Decimal(str(value)), format=pattern, locale=self.locale)

    def day(self, value: str | date | None) -> str:
        if not value:
            return ""
        when = date.fromisoformat(value[:10]) if isinstance(value, str) else value
        return format_date(when, format="medium", locale=self.locale)

    def moment(self, value: str | datetime | None) -> str:
        """A moment to the minute, in UTC (the service's time), written per locale."""
        if not value:
            return ""
        when = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
        return format_datetime(when.astimezone(timezone.utc), format="short", tzinfo=timezone.utc,
                               locale=self.locale) + " UTC"

    def context(self) -> dict:
        return {"_": self.gettext, "gettext": self.gettext, "ngettext": self.ngettext, "lang": self.lang,
                "html_lang": self.html_lang, "qty": self.quantity, "num": self.number, "day": self.day,
                "moment": self.moment}
