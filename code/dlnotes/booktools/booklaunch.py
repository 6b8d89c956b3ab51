"""Sphinx extension: every chapter page opens in Colab and offers its Colab-ready notebook.

Jupyter Book's own Colab button links the chapter's ``.md`` source, which Colab cannot open. This
extension instead links the executed ``.ipynb`` of the chapter on the publish branch (see
``dlnotes.booktools.notebooks``; ``_config.yml`` says where), adds that link to the theme's launch menu
beside Binder, and makes the page's ``.ipynb`` download the same Colab-ready notebook (the theme
offers the raw executed one, whose markdown still holds MyST directives). The ``.md`` source stays
in the download menu as the theme puts it there.

It also tells search engines and browsers about a page's twin in the other language
(``<link rel="alternate" hreflang>``); readers get the twin from the link at the top of each page.

Enable with ``extensions = ["dlnotes.booktools.booklaunch"]``; it needs the theme's launch buttons
(``launch_buttons.binderhub_url`` in ``_config.yml``), which it checks.
"""

from __future__ import annotations

import html
from pathlib import Path

from dlnotes.booktools import bookassets, chapters, notebooks


def twin_page(pagename: str) -> tuple[str, str] | None:
    """The other-language page of ``pagename`` and its language, or None for a bilingual page."""
    try:
        other = chapters.twin(Path(pagename)).as_posix()
    except ValueError:
        return None
    return other, bookassets.page_language(other, default=None)


def _launch_group(context) -> dict | None:
    return next((b for b in context.get("header_buttons", []) if b.get("label") == "launch-buttons"), None)


def _check_config(app, config) -> None:
    if not (config.html_theme_options.get("launch_buttons") or {}).get("binderhub_url"):
        raise RuntimeError("dlnotes.booktools.booklaunch needs launch_buttons.binderhub_url in _config.yml")
    notebooks.read_settings(Path(app.confdir))  # fail early, with its message, if _config.yml lacks them


def _settings(app) -> notebooks.BookSettings:
    if getattr(app, "_dlnotes_settings", None) is None:
        app._dlnotes_settings = notebooks.read_settings(Path(app.confdir))
    return app._dlnotes_settings


def _add_launch(app, pagename, templatename, context, doctree) -> None:
    twin = twin_page(pagename)
    if twin is not None and twin[0] in app.env.all_docs:
        href = context["pathto"](twin[0])
        context["metatags"] = context.get("metatags", "") + (
            f'\n<link rel="alternate" hreflang="{twin[1]}" href="{html.escape(href)}" />')

    group = _launch_group(context)
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if group is None or not executed.is_file():
        return  # not an executed chapter (landing page, part index, appendix text)
    if not notebooks.has_code(executed):
        context["header_buttons"].remove(group)  # no code, nothing to launch
        return
    settings, build = _settings(app), Path(app.outdir).parent
    # the .ipynb that the download menu offers (the theme copied the raw one there): the Colab-ready one
    notebooks.write_colab_notebook(pagename, build=build, root=Path(app.confdir),
                                   out=Path(app.outdir) / "_sources", settings=settings)
    group["buttons"].append({
        "type": "link",
        "text": "Colab",
        "tooltip": "Launch on Colab",
        "icon": "_static/images/logo_colab.png",
        "url": settings.colab_url(pagename),
        "label": "colab-button",
    })


def setup(app) -> dict:
    app.connect("config-inited", _check_config)
    # after sphinx-book-theme's own header buttons (priority 501), which build the launch menu
    app.connect("html-page-context", _add_launch, priority=502)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
