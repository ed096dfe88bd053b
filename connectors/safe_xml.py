"""Safe XML: no entity declarations, no external entities, no DTD retrieval.

Feeds and sitemaps come from servers we do not control. A billion-laughs document or an
``<!ENTITY x SYSTEM "file:///etc/passwd">`` must be refused before any parser expands it, so
every entity declaration (general or parameter, internal or external) is refused outright:
news feeds do not need them. A DOCTYPE that only *names* an external DTD, like RSS 0.91's
Netscape one, is accepted, because nothing here ever retrieves it.

``check_xml`` only answers "is this safe to hand to a parser?", not "is this well-formed?":
ill-formed feeds still go to feedparser, which recovers what it can. It reads the prolog with
expat (via defusedxml) and stops at the root element, so its cost does not grow with the feed.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser

__all__ = ["UnsafeXml", "check_xml", "parse_xml"]

#: How an entity declaration looks in every encoding a feed may use: ASCII-compatible ones
#: (UTF-8, Latin-1, cp1252, Big5, EUC-*, Shift_JIS, KOI8-R, ...) and UTF-16/32 in both orders.
_ENTITY_DECLARATIONS = tuple(
    "<!ENTITY".encode(codec)
    for codec in ("ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)


class UnsafeXml(ValueError):
    """An XML document that declares or references entities; the message says which."""


class _RootReached(Exception):
    """The prolog, the only place a DTD can live, is over."""


class _StopAtRoot:
    """An ElementTree parser target that ends parsing at the first element."""

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        raise _RootReached


def _safe_parser(target: object = None) -> DefusedXMLParser:
    return DefusedXMLParser(
        target=target, forbid_dtd=False, forbid_entities=True, forbid_external=True
    )


def check_xml(data: bytes) -> None:
    """Raise ``UnsafeXml`` if ``data`` declares or references entities; accept anything else.

    When expat cannot read the prolog (an encoding it does not know, such as Big5 or UTF-32, or
    plain garbage), the bytes are searched for an entity declaration in any encoding instead,
    so a document we cannot check is refused only if it might declare entities.
    """
    parser = _safe_parser(_StopAtRoot())
    try:
        parser.feed(data)
        parser.close()
    except _RootReached:
        return
    except DefusedXmlException as exc:
        raise UnsafeXml(_explain(exc)) from None
    except (ParseError, ValueError, LookupError):
        pass  # not readable as XML by expat: fall back to the byte search below
    if any(declaration in data for declaration in _ENTITY_DECLARATIONS):
        raise UnsafeXml("entity declaration (<!ENTITY) in a document the XML parser cannot read")


def parse_xml(data: bytes) -> Element:
    """Parse a whole document safely; ``UnsafeXml`` for entities, ``ValueError`` if malformed."""
    check_xml(data)  # also refuses what expat cannot read but might declare entities
    parser = _safe_parser()
    try:
        parser.feed(data)
        root: Element = parser.close()
    except ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    except (ValueError, LookupError) as exc:  # an encoding expat or Python cannot decode
        raise ValueError(f"unreadable XML: {exc}") from None
    return root


def _explain(exc: DefusedXmlException) -> str:
    if isinstance(exc, EntitiesForbidden):
        where = f" pointing to {exc.sysid!r}" if exc.sysid else ""
        return f"unsafe XML refused: declares entity {exc.name!r}{where}"
    if isinstance(exc, ExternalReferenceForbidden):
        return f"unsafe XML refused: references external entity {exc.sysid!r}"
    return f"unsafe XML refused: {exc}"
