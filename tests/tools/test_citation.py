"""CITATION.cff: valid Citation File Format 1.2.0, consistent with pyproject.toml, and citing only DOIs the
repository already documents (book/references.bib, book/intro.md, params/global.yaml).

The official CFF 1.2.0 JSON schema is not available offline (and ``cffconvert``, which ships it, pins an old
``jsonschema`` that conflicts with Jupyter's), so the test validates with ``jsonschema`` against the subset of the
CFF 1.2.0 schema written below: the required keys, the allowed top-level, person, entity and reference keys (no
other key is accepted, as in the official schema), and the types and patterns of the keys this file uses (DOI,
date, SPDX licence, integer volume/year/pages).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

import pipeline

REPO = pipeline.find_repo(Path(__file__))
CFF = REPO / "CITATION.cff"

_STR = {"type": "string", "minLength": 1}
_DOI = {"type": "string", "pattern": r"^10\.\d{4,9}(\.\d+)?/[A-Za-z0-9:/_;\-\.\(\)\[\]\\]+$"}
_URL = {"type": "string", "pattern": r"^(https|http|ftp|sftp)://.+"}
_DATE = {"type": "string", "pattern": r"^[0-9]{4}-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])$"}
_STR_OR_NUM = {"anyOf": [_STR, {"type": "number"}]}
_PERSON_KEYS = ["address", "affiliation", "alias", "city", "country", "email", "family-names", "fax", "given-names",
                "name-particle", "name-suffix", "orcid", "post-code", "region", "tel", "website"]
_ENTITY_KEYS = ["address", "alias", "city", "country", "date-end", "date-start", "email", "fax", "location", "name",
                "orcid", "post-code", "region", "tel", "website"]
_REFERENCE_KEYS = [
    "abbreviation", "abstract", "authors", "collection-doi", "collection-title", "collection-type", "commit",
    "conference", "contact", "copyright", "data-type", "database", "database-provider", "date-accessed",
    "date-downloaded", "date-published", "date-released", "department", "doi", "edition", "editors",
    "editors-series", "end", "entry", "filename", "format", "identifiers", "institution", "isbn", "issn", "issue",
    "issue-date", "issue-title", "journal", "keywords", "languages", "license", "license-url", "loc-end",
    "loc-start", "location", "medium", "month", "nihmsid", "notes", "number", "number-volumes", "pages",
    "patent-states", "pmcid", "publisher", "recipients", "repository", "repository-artifact", "repository-code",
    "scope", "section", "senders", "start", "status", "term", "thesis-type", "title", "translators", "type", "url",
    "version", "volume", "volume-title", "year", "year-original",
]
_REFERENCE_TYPES = [
    "art", "article", "audiovisual", "bill", "blog", "book", "catalogue", "conference-paper", "conference", "data",
    "database", "dictionary", "edited-work", "encyclopedia", "film-broadcast", "generic", "government-document",
    "grant", "hearing", "historical-work", "legal-case", "legal-rule", "magazine-article", "manual", "map",
    "multimedia", "music", "newspaper-article", "pamphlet", "patent", "personal-communication", "proceedings",
    "report", "serial", "slides", "software-code", "software-container", "software-executable",
    "software-virtual-machine", "software", "sound-recording", "standard", "statute", "thesis", "unpublished",
    "video", "website",
]
#: SPDX identifiers this project may use (the official schema lists the whole SPDX list of 2021-05-14)
_SPDX = ["MIT", "Apache-2.0", "BSD-3-Clause", "CC-BY-4.0", "CC0-1.0", "GPL-3.0-or-later"]


def _people() -> dict:
    return {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"anyOf": [
        {"$ref": "#/definitions/person"}, {"$ref": "#/definitions/entity"}]}}


CFF_1_2_0_SUBSET = {
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["authors", "cff-version", "message", "title"],
    "definitions": {
        "person": {"type": "object", "additionalProperties": False,
                   "properties": {k: _STR for k in _PERSON_KEYS} | {"email": {"type": "string"}, "website": _URL}},
        "entity": {"type": "object", "additionalProperties": False, "required": ["name"],
                   "properties": {k: _STR for k in _ENTITY_KEYS} | {"date-start": _DATE, "date-end": _DATE,
                                                                     "website": _URL}},
        "reference": {
            "type": "object", "additionalProperties": False, "required": ["authors", "title", "type"],
            "properties": {k: {} for k in _REFERENCE_KEYS} | {
                "authors": _people(), "title": _STR, "type": {"enum": _REFERENCE_TYPES}, "doi": _DOI,
                "journal": _STR, "notes": _STR, "database": _STR, "abstract": _STR,
                "volume": {"type": "integer"}, "year": {"type": "integer"}, "start": {"type": "integer"},
                "end": {"type": "integer"}, "pages": {"type": "integer"}, "month": {"type": "integer"},
                "issue": _STR_OR_NUM, "url": _URL, "license-url": _URL, "repository-code": _URL,
                "date-released": _DATE, "date-published": _DATE, "date-accessed": _DATE,
                "version": _STR_OR_NUM, "keywords": {"type": "array", "items": _STR},
            },
        },
    },
    "properties": {
        "abstract": _STR, "authors": _people(), "cff-version": {"type": "string", "pattern": r"^1\.2\.0$"},
        "commit": _STR, "contact": _people(), "date-released": _DATE, "doi": _DOI,
        "identifiers": {"type": "array", "minItems": 1},
        "keywords": {"type": "array", "minItems": 1, "uniqueItems": True, "items": _STR},
        "license": {"anyOf": [{"enum": _SPDX}, {"type": "array", "items": {"enum": _SPDX}, "minItems": 1}]},
        "license-url": _URL, "message": _STR, "preferred-citation": {"$ref": "#/definitions/reference"},
        "references": {"type": "array", "minItems": 1, "uniqueItems": True,
                       "items": {"$ref": "#/definitions/reference"}},
        "repository": _URL, "repository-artifact": _URL, "repository-code": _URL, "title": _STR,
        "type": {"enum": ["dataset", "software"]}, "url": _URL, "version": _STR_OR_NUM,
    },
}


@pytest.fixture(scope="module")
def cff() -> dict:
    data = yaml.safe_load(CFF.read_text(encoding="utf-8"))
    assert "date-released" not in data or isinstance(data["date-released"], str), \
        "quote date-released: CFF wants a string, YAML would read a date"
    return data


def test_citation_cff_is_valid_cff_1_2_0(cff):
    jsonschema.validate(cff, CFF_1_2_0_SUBSET)
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"


def test_the_subset_schema_rejects_what_cff_rejects(cff):
    for bad in ({**cff, "doi": "https://doi.org/10.5194/essd-17-5181-2025"},  # a resolver URL is not a DOI
                {**cff, "authors": []},
                {**cff, "unknown-key": "x"},
                {**cff, "references": [{**cff["references"][0], "volume": "17"}]},
                {k: v for k, v in cff.items() if k != "message"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, CFF_1_2_0_SUBSET)


def test_citation_cff_agrees_with_pyproject(cff):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert str(cff["version"]) == project["version"]
    assert cff["license"] == project["license"]


def test_citation_cff_cites_the_paper_and_only_documented_dois(cff):
    dois = [r["doi"] for r in cff["references"] if "doi" in r]
    assert dois[0] == "10.5194/essd-17-5181-2025" and cff["references"][0]["type"] == "article"
    documented = "\n".join(p.read_text(encoding="utf-8") for p in (
        REPO / "book" / "references.bib", REPO / "book" / "intro.md", REPO / "params" / "global.yaml"))
    for doi in dois:
        assert re.search(re.escape(doi) + r"(?![\w.-])", documented), f"{doi} is documented nowhere in the repository"
    assert "10.5281/zenodo.14198201" in dois  # the annual means
    cite_page = (REPO / "book" / "cite.md").read_text(encoding="utf-8")
    for doi in dois:
        assert doi in cite_page, f"book/cite.md does not list {doi}"
