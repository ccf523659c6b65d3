"""A company's brand in its mail: an accent colour and a logo, checked before use.

Both end up inside HTML attributes (a `style`, an `img src`): autoescaping keeps them
inside the attribute, these checks keep them from being anything but a colour and an
https image address. The configuration uses them to refuse bad values by key; rendering
uses them again so a `Sender` built elsewhere cannot slip one past.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

DEFAULT_COLOR = "#1a73e8"
_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_URL_UNSAFE = re.compile(r"[\s\"'<>\\`]")


def color_problem(value: str) -> str | None:
    """Why `value` is not a colour we accept (#rgb or #rrggbb), or None."""
    if _HEX.fullmatch(value):
        return None
    return f"not a colour: {value!r} (use #rgb or #rrggbb, e.g. {DEFAULT_COLOR})"


def logo_problem(value: str) -> str | None:
    """Why `value` is not an https image address we accept, or None."""
    if _URL_UNSAFE.search(value) or len(value) > 2000:
        return "not a URL (spaces, quotes, angle brackets or backslashes)"
    try:
        parts = urlsplit(value)
    except ValueError:
        return "not a URL"
    if parts.scheme != "https" or not parts.hostname:
        return "must be an https:// URL"
    return None


def button_text_color(background: str) -> str:
    """White, or black where white would be hard to read on `background` (WCAG contrast)."""
    digits = background.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    on_white, on_black = 1.05 / (luminance + 0.05), (luminance + 0.05) / 0.05
    # White text is what buttons usually carry: kept while it meets WCAG AA (4.5:1)
    return "#ffffff" if on_white >= 4.5 or on_white >= on_black else "#000000"


def brand_context(brand_color: str, logo_url: str) -> dict[str, str]:
    """The template variables of a brand; a value failing its check falls back to none."""
    color = brand_color if brand_color and color_problem(brand_color) is None else DEFAULT_COLOR
    return {
        "brand_color": color,
        "button_text_color": button_text_color(color),
        "logo_url": logo_url if logo_url and logo_problem(logo_url) is None else "",
    }
