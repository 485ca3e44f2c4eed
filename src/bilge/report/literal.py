"""The one way outside text enters a rich renderable.

Names, labels, reasons, details and error texts come from engines,
registries and users. Wrapped here they are never parsed as rich markup (a
network named "[red]x" stays literal) and never carry a control character
to the terminal (text.printable). Escaping before rich lays the table out
matters: rich measures "\\x1b" as the four cells it is shown as, where a raw
ESC would have measured nothing and pushed the border out of line.
"""

from __future__ import annotations

from rich.text import Text

from bilge.report.text import printable


def literal(text: str, style: str = "") -> Text:
    """`text` as it should be shown: escaped, unstyled unless `style` says so."""
    return Text(printable(text), style=style)
