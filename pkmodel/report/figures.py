"""Figures embedded in the report: rendered to PNG or SVG and inlined as data URIs.

Inlining keeps the report one self-contained file that opens without a network or any file
beside it.
"""

from __future__ import annotations

import base64
import html
import io

from matplotlib.figure import Figure

__all__ = ["figure_html", "figure_to_data_uri"]

_MIME = {"png": "image/png", "svg": "image/svg+xml"}


def figure_to_data_uri(fig: Figure, fmt: str = "png", dpi: int = 110) -> str:
    """Render ``fig`` as a ``data:`` URI.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    fmt : {"png", "svg"}, default "png"
        Image format.
    dpi : int, default 110
        Resolution of a PNG.

    Returns
    -------
    str
        ``data:image/png;base64,...`` (or ``image/svg+xml``).
    """
    if fmt not in _MIME:
        raise ValueError(f"fmt must be 'png' or 'svg', not {fmt!r}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
    payload = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"data:{_MIME[fmt]};base64,{payload}"


def figure_html(fig: Figure, alt: str, caption: str = "", *, fmt: str = "png",
                dpi: int = 110) -> str:
    """A ``<figure>`` element with the image inlined and an optional caption.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    alt : str
        Alternative text (what the image shows, for screen readers and broken images).
    caption : str, optional
        Caption text (escaped).
    fmt : {"png", "svg"}, default "png"
        Image format.
    dpi : int, default 110
        Resolution of a PNG.

    Returns
    -------
    str
        HTML.
    """
    uri = figure_to_data_uri(fig, fmt=fmt, dpi=dpi)
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (f'<figure><img src="{uri}" alt="{html.escape(alt, quote=True)}" '
            f'class="plot">{cap}</figure>')
