"""Listing and search: filters, sorts, page numbers and keyset cursors, full-text search.

Full-text search is PostgreSQL ``tsvector`` matching (a stored generated column with a
GIN index, migration 0007) or SQLite FTS5 (a table kept in step by triggers). Both
match every word of the query as a prefix, on title and description.

Keyset cursors encode the sort and the last row's (sort value, id), so a page is an
index range scan however deep it is; page numbers (with a total) remain for UIs that
want them.
"""

from __future__ import annotations

import base64
import binascii
import collections
import functools
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from videoforge.gallery.access import listable_branches
from videoforge.gallery.models import GalleryVideo, VideoStatus, Visibility
from videoforge.gallery.schemas import VideoSort
from videoforge.infra.auth.principal import Principal
from videoforge.infra.errors import BadRequest

MAX_PER_PAGE = 100
MAX_QUERY_WORDS = 16
#: A PostgreSQL search with at most this many hits is paged from its full-text matches
#: (GIN bitmap scan + top-N sort) instead of walking the sort index (see list_videos).
FEW_HITS = 5000
#: Page-number mode counts at most this many rows: past it the total is reported as a
#: lower bound (``total_exact`` false, "10,000+"), so the default first page never pays
#: for counting a million rows (110-240 ms at 1M rows, see docs/benchmarks.md).
COUNT_CAP = 10_000
#: Page numbers reach this many rows (the counted ones); deeper, OFFSET would read and
#: throw away every row before the page (0.5 s at 100,000 rows for a signed-in
#: listing): cursors go on from there at the cost of one page.
MAX_OFFSET = COUNT_CAP

#: A listing reads plain rows of the video's columns, not ORM objects: a page of them
#: is built without the identity map and attribute instrumentation (about a fifth of
#: a listing request's Python time at 20 rows), and every field reads the same.
VIDEO_COLUMNS = tuple(GalleryVideo.__table__.c)
#: A row of those columns as a named tuple: SQLAlchemy 2.1's ``Row`` answers an
#: attribute in about 870 ns (an index in 100), and building a page's items reads 35
#: of them per video, 0.6 ms of a 20-video page; a named tuple's field reads in 40.
VideoRow = Any


@functools.lru_cache(maxsize=16)
def _row_type(keys: tuple[str, ...]) -> Any:
    return collections.namedtuple("VideoRow", keys)


def plain_rows(result: Any) -> list[Any]:
    """The rows of ``result`` as named tuples of its columns (same names, same values)."""
    make = _row_type(tuple(result.keys()))._make
    return [make(row) for row in result]


#: The stored, GIN-indexed document (migration 0007): title and description as a tsvector.
PG_DOCUMENT = "gallery_videos.search_document"

_WORD = re.compile(r"\w+", re.UNICODE)

# (column, descending) per sort; the id breaks ties so the order is total.
_SORTS: dict[VideoSort, tuple[InstrumentedAttribute[Any], bool]] = {
    VideoSort.NEWEST: (GalleryVideo.created_at, True),
    VideoSort.OLDEST: (GalleryVideo.created_at, False),
    VideoSort.MOST_VIEWED: (GalleryVideo.views, True),
    VideoSort.TITLE: (GalleryVideo.title, False),
    VideoSort.LIKES: (GalleryVideo.likes, True),
}


def _sort_key(sort: VideoSort, value: Any) -> Any:
    """What the rows are ordered by: titles case-insensitively ("apple" beside "Apple",
    not after "Zebra"), through the lower(title) index of migration 0013. The cursor
    keeps the raw title and the database lowers both sides, so SQLite's ASCII lower()
    and PostgreSQL's collation-aware one each agree with their own ordering."""
    return func.lower(value) if sort is VideoSort.TITLE else value


@dataclass(frozen=True)
class ListParams:
    q: str | None = None
    owner: str | None = None
    status: VideoStatus | None = None
    visibility: Visibility | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    sort: VideoSort = VideoSort.NEWEST
    page: int | None = None
    per_page: int = 20
    cursor: str | None = None
    count_cap: int = COUNT_CAP
    max_offset: int = MAX_OFFSET


@dataclass(frozen=True)
class ListResult:
    items: list[VideoRow]
    total: int | None
    page: int | None
    next_cursor: str | None
    #: False when ``total`` is the count cap (there are more); None in cursor mode.
    total_exact: bool | None = None


def query_words(q: str | None) -> list[str]:
    """The words of a search query (punctuation and operators are not syntax here)."""
    if not q:
        return []
    return _WORD.findall(q.lower())[:MAX_QUERY_WORDS]


def _search_filter(dialect: str, words: list[str]) -> ColumnElement[bool]:
    if dialect == "postgresql":
        tsquery = " & ".join(f"{w}:*" for w in words)
        return literal_column(PG_DOCUMENT).op("@@")(
            func.to_tsquery(literal_column("'simple'::regconfig"), tsquery)
        )
    # FTS5: quoted words (no operator can be injected), prefix-matched, and only in the
    # title/description columns (never the video_id column the triggers use).
    match = "{title description} : (" + " AND ".join(f'"{w}"*' for w in words) + ")"
    ids = text(
        "SELECT video_id FROM gallery_videos_fts WHERE gallery_videos_fts MATCH :fts_query"
    ).bindparams(fts_query=match)
    return GalleryVideo.id.in_(ids.columns(literal_column("video_id")))


def encode_cursor(sort: VideoSort, video: GalleryVideo | VideoRow) -> str:
    column, _ = _SORTS[sort]
    value: Any = getattr(video, column.key)
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps({"s": sort.value, "v": value, "i": video.id.hex}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(sort: VideoSort, cursor: str) -> tuple[Any, uuid.UUID]:
    """The (sort value, id) of the last row of the previous page."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data["s"] != sort.value:
            raise ValueError("sort changed")
        last_id = uuid.UUID(hex=data["i"])
        value = data["v"]
        if sort in (VideoSort.NEWEST, VideoSort.OLDEST):
            value = datetime.fromisoformat(value)
        elif sort in (VideoSort.MOST_VIEWED, VideoSort.LIKES):
            value = int(value)
            if not -(2**63) <= value < 2**63:  # beyond BIGINT: the database would refuse
                raise ValueError("bad count")
        elif not isinstance(value, str):
            raise ValueError("bad title")
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error, json.JSONDecodeError):
        raise BadRequest(
            "The cursor is invalid (or was made for another sort).", code="invalid_cursor"
        ) from None
    return value, last_id


#: The names the keyset's values are bound to (given at execution: see ListingQuery).
AFTER_VALUE = "after_value"
AFTER_ID = "after_id"


def _after(sort: VideoSort) -> ColumnElement[bool]:
    # A row-value comparison, not "a < x OR (a = x AND id < y)": PostgreSQL turns the
    # OR into a bitmap scan of every earlier row, while (a, id) < (x, y) is a plain
    # index range (SQLite has row values too).
    column, descending = _SORTS[sort]
    keys = tuple_(_sort_key(sort, column), GalleryVideo.id)
    bound = tuple_(
        _sort_key(sort, bindparam(AFTER_VALUE, type_=column.type)),
        bindparam(AFTER_ID, type_=GalleryVideo.id.type),
    )
    return keys < bound if descending else keys > bound


def build_filters(
    dialect: str, principal: Principal | None, params: ListParams
) -> list[ColumnElement[bool]]:
    """The caller's filters (not who may see what: see :func:`listable_branches`)."""
    filters: list[ColumnElement[bool]] = []
    if params.owner is not None:
        owner = principal.user_id if params.owner == "me" and principal else params.owner
        filters.append(GalleryVideo.user_id == owner)
    if params.status is not None:
        filters.append(GalleryVideo.status == params.status)
    if params.visibility is not None:
        filters.append(GalleryVideo.visibility == params.visibility)
    if params.min_duration is not None:
        filters.append(GalleryVideo.duration >= params.min_duration)
    if params.max_duration is not None:
        filters.append(GalleryVideo.duration <= params.max_duration)
    words = query_words(params.q)
    if words:
        filters.append(_search_filter(dialect, words))
    return filters


@dataclass(frozen=True)
class ListingQuery:
    """The statements of one listing page (built without a database, for inspection).

    ``statement`` is the page's, with a cursor's row bound by name (``AFTER_VALUE``,
    ``AFTER_ID``) to ``page_values`` at execution, so that one built statement serves
    every cursor; ``page_stmt`` is it with them written in (to compile or explain it).
    """

    statement: Select[GalleryVideo]
    count_stmt: Select[int] | None
    page: int | None
    page_values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def page_stmt(self) -> Select[GalleryVideo]:
        return self.statement.params(**self.page_values) if self.page_values else self.statement


def _unindexed(column: InstrumentedAttribute[Any]) -> ColumnElement[Any]:
    """The same ordering as ``column`` through an expression no index serves."""
    if column.key == "created_at":
        return column + text("interval '0'")
    if column.key in ("views", "likes"):
        return column + literal_column("0")
    return func.lower(func.concat(column, ""))


#: A cursor that has been decoded: its values are bound at execution.
_KEYSET = "keyset"


def _caller(principal: Principal | None) -> Principal | None:
    """All of the caller that the SQL depends on (their id, whether an admin): the key
    of the built statements, the same whatever name or groups the token carries."""
    if principal is None:
        return None
    return Principal(user_id=principal.user_id, is_admin=principal.is_admin)


def build_listing(
    dialect: str, principal: Principal | None, params: ListParams, *, from_matches: bool = False
) -> ListingQuery:
    """The page query (and the count for page numbers) for ``params``.

    ``from_matches`` orders by an expression no index can serve, so that PostgreSQL
    reads the search's few full-text matches (GIN) and sorts them, rather than walking
    the sort index and testing every row until a page is found.

    Building a listing's statements (and SQLAlchemy's cache key for them) costs about
    as much CPU as the rest of the request's Python: the same request (the first page,
    a popular search, the next page of one) is served by the statements built the first
    time, with the cursor's row bound at execution.
    """
    if not 1 <= params.per_page <= MAX_PER_PAGE:
        raise BadRequest(f"per_page must be 1..{MAX_PER_PAGE}.", code="invalid_per_page")
    if params.page is not None and params.cursor is not None:
        raise BadRequest("Use either page or cursor, not both.", code="invalid_pagination")
    values: dict[str, Any] = {}
    if params.cursor is not None:
        values[AFTER_VALUE], values[AFTER_ID] = decode_cursor(params.sort, params.cursor)
        params = replace(params, cursor=_KEYSET)
    query = _build_listing(dialect, _caller(principal), params, from_matches)
    return replace(query, page_values=values) if values else query


@functools.lru_cache(maxsize=256)
def _build_listing(
    dialect: str, principal: Principal | None, params: ListParams, from_matches: bool
) -> ListingQuery:
    filters = build_filters(dialect, principal, params)
    column, descending = _SORTS[params.sort]
    key: Any = _unindexed(column) if from_matches else _sort_key(params.sort, column)
    order = (key.desc(), GalleryVideo.id.desc()) if descending else (key.asc(), GalleryVideo.id)
    branches = listable_branches(principal)
    keyset: list[ColumnElement[bool]] = []
    count_stmt: Select[int] | None = None
    page: int | None = None
    offset = 0
    if params.cursor is not None:
        keyset.append(_after(params.sort))
    else:
        page = params.page or 1
        offset = (page - 1) * params.per_page
        if offset >= params.max_offset:
            raise BadRequest(
                f"Page numbers reach the first {params.max_offset:,} videos; follow "
                "next_cursor to go further, or narrow the search.",
                code="page_too_deep",
            )
        counted = (
            select(GalleryVideo.id)
            .where(or_(*branches), *filters)
            .limit(params.count_cap + 1)
            .subquery()
        )
        count_stmt = select(func.count()).select_from(counted)

    wanted = params.per_page + 1  # one extra row tells whether there is a next page
    if len(branches) == 1:
        stmt = (
            select(*VIDEO_COLUMNS)
            .where(branches[0], *filters, *keyset)
            .order_by(*order)
            .offset(offset)
            .limit(wanted)
        )
    else:
        # Each branch reads its own index in order and stops after what the page
        # needs; the union of those few ids is then ordered once.
        parts = [
            select(GalleryVideo.id)
            .where(branch, *filters, *keyset)
            .order_by(*order)
            .limit(offset + wanted)
            .subquery()
            for branch in branches
        ]
        ids = union(*(select(part.c.id) for part in parts)).subquery()
        stmt = (
            select(*VIDEO_COLUMNS)
            .where(GalleryVideo.id.in_(select(ids.c.id)))
            .order_by(*order)
            .offset(offset)
            .limit(wanted)
        )
    return ListingQuery(statement=stmt, count_stmt=count_stmt, page=page)


async def list_videos(
    session: AsyncSession, principal: Principal | None, params: ListParams
) -> ListResult:
    """One page of the videos the caller may list, filtered, searched and sorted."""
    dialect = session.get_bind().dialect.name
    query = build_listing(dialect, principal, params)
    # The statements select columns, not entities: run on the session's connection they
    # skip the ORM's result handling (about a tenth of a listing request's CPU).
    conn = await session.connection()
    total: int | None = None
    exact: bool | None = None
    if query.count_stmt is not None:
        total = int((await conn.execute(query.count_stmt)).scalar_one())
        exact = total <= params.count_cap
        total = min(total, params.count_cap)
    if dialect == "postgresql" and query_words(params.q):
        # The planner overestimates rare words and walks the sort index, testing every
        # row's document (0.3 s at a million rows when the few hits are old; seconds
        # before migration 0007 stored it); a small hit set is cheaper read through
        # the GIN index and sorted.
        if total is None:
            hits = await _capped_hits(session, principal, params)
        else:
            hits = total if exact else FEW_HITS + 1
        if hits <= FEW_HITS:
            query = build_listing(dialect, principal, params, from_matches=True)
    offset = ((query.page or 1) - 1) * params.per_page
    rows: list[VideoRow] = []
    # A page past the end (a search with no hit, above all) needs no page query. On
    # PostgreSQL that query can be the costly part: the planner walks the sort index
    # testing every row's document when it overestimates the hits (0.3 s at a million
    # rows for a word found nowhere, while the count uses the GIN index).
    if total is None or not exact or offset < total:
        rows = plain_rows(await conn.execute(query.statement, query.page_values))
    has_more = len(rows) > params.per_page
    items = rows[: params.per_page]
    next_cursor = encode_cursor(params.sort, items[-1]) if has_more and items else None
    return ListResult(
        items=items, total=total, page=query.page, next_cursor=next_cursor, total_exact=exact
    )


async def _capped_hits(
    session: AsyncSession, principal: Principal | None, params: ListParams
) -> int:
    """How many rows the search matches, counting no further than ``FEW_HITS + 1``."""
    dialect = session.get_bind().dialect.name
    stmt = _capped_hits_stmt(dialect, _caller(principal), replace(params, cursor=None, page=None))
    return int((await session.execute(stmt)).scalar_one())


@functools.lru_cache(maxsize=256)
def _capped_hits_stmt(dialect: str, principal: Principal | None, params: ListParams) -> Select[int]:
    matches = (
        select(GalleryVideo.id)
        .where(or_(*listable_branches(principal)), *build_filters(dialect, principal, params))
        .limit(FEW_HITS + 1)
        .subquery()
    )
    return select(func.count()).select_from(matches)
