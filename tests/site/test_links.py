"""No broken internal link or anchor anywhere in the built site (dlnotes.booktools.sitecheck)."""

from dlnotes.booktools import sitecheck


def test_the_built_site_has_no_broken_internal_links_or_anchors(site):
    broken = sitecheck.broken_links(site)
    assert broken == [], "\n".join(map(str, broken[:50]))
