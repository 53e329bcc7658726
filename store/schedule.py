"""Schedules: the staff CSV import of classroom sessions and consultation slots (places:
store/places.py; how an offer is shown: store/offers.py).

    python -m store.schedule import-sessions data/schedule/sessions.csv
    python -m store.schedule import-slots data/schedule/slots.csv

A file is checked as a whole: every bad row is reported with its line number and reason, and
nothing is imported from a file with any error (the import is one transaction).

sessions.csv: code,module,city,venue,start_date,start_time,end_date,end_time,timezone,capacity
              and optionally venue_zh (the venue's Chinese name, shown in Chinese replies;
              may be left empty in a row, then the venue is shown as written)
slots.csv:    code,module,region,expert,date,start_time,end_time,timezone
Dates are YYYY-MM-DD and times HH:MM in the row's local time zone (an IANA name such as
Asia/Shanghai); they are stored in UTC.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select

from store.db import PROJECT_ROOT, Database
from store.kinds import OfferStatus
from store.models import ClassroomSession, ConsultationSlot

# The wording of offers lives with Offer in store/offers.py; importable from here too, for
# the actions that read it as schedule.<name>.
from store.offers import (  # noqa: F401
    format_date,
    format_time,
    local,
    module_title,
    notification_payload,
    offer_line,
    offer_values,
)

# The place functions stay importable from here (the console and the actions
# call schedule.place_name etc.); they live with the one gazetteer in store/places.py.
from store.places import (  # noqa: F401
    CITIES,
    REGIONS,
    canonical_place,
    cities_in,
    place_name,
    region_of,
    scheduled,
)

SCHEDULE_DIR = PROJECT_ROOT / "data" / "schedule"
SAMPLE_SESSIONS = SCHEDULE_DIR / "sessions.csv"
SAMPLE_SLOTS = SCHEDULE_DIR / "slots.csv"
MODULES = (1, 2, 3, 4, 5)

# --- CSV import ------------------------------------------------------------------------------

SESSION_COLUMNS = ("code", "module", "city", "venue", "start_date", "start_time", "end_date",
                   "end_time", "timezone", "capacity")
SESSION_OPTIONAL_COLUMNS = ("venue_zh",)
SLOT_COLUMNS = ("code", "module", "region", "expert", "date", "start_time", "end_time",
                "timezone")
MAX_CAPACITY = 100
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_MARKUP = re.compile(r"[<>]|&[#a-zA-Z0-9]+;")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class _RowChecker:
    """Collects the reasons one row is bad; each parse returns None when the field is bad."""

    def __init__(self, row: dict[str, str]) -> None:
        self.row = row
        self.reasons: list[str] = []

    def text(self, column: str, max_length: int) -> str | None:
        value = (self.row.get(column) or "").strip()
        if not value:
            self.reasons.append(f"{column} is empty")
            return None
        if len(value) > max_length:
            self.reasons.append(f"{column} is longer than {max_length} characters")
            return None
        if _MARKUP.search(value) or _CONTROL.search(value):
            self.reasons.append(f"{column} contains markup or control characters")
            return None
        return value

    def optional_text(self, column: str, max_length: int) -> str | None:
        """An optional column: None when absent or empty, else checked like text()."""
        if not (self.row.get(column) or "").strip():
            return None
        return self.text(column, max_length)

    def chinese_name(self, column: str, max_length: int) -> str | None:
        """An optional Chinese name: must hold Chinese characters (an English name pasted
        into the wrong column would otherwise be shown to Chinese readers as Chinese)."""
        value = self.optional_text(column, max_length)
        if value is not None and not _HAN.search(value):
            self.reasons.append(f"{column} {value!r} has no Chinese characters")
            return None
        return value

    def code(self) -> str | None:
        value = self.text("code", 32)
        if value is not None and not _CODE.match(value):
            self.reasons.append(f"code {value!r} may only use letters, digits, - and _")
            return None
        return value

    def module(self) -> int | None:
        value = self.text("module", 3)
        if value is None:
            return None
        if not value.isdigit() or int(value) not in MODULES:
            self.reasons.append(f"unknown module {value!r} (1 to 5)")
            return None
        return int(value)

    def place(self, column: str, section: str) -> str | None:
        value = self.text(column, 64)
        if value is None:
            return None
        name = canonical_place(value)
        if name is None or name not in scheduled(section):
            self.reasons.append(
                f"unknown {column} {value!r} (add it to data/places.yml with schedule: true first)")
            return None
        return name

    def zone(self) -> ZoneInfo | None:
        value = self.text("timezone", 64)
        if value is None:
            return None
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.reasons.append(f"unknown time zone {value!r} (use a name like Asia/Shanghai)")
            return None

    def date(self, column: str) -> dt.date | None:
        value = self.text(column, 10)
        if value is None:
            return None
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise ValueError
            return dt.date.fromisoformat(value)
        except ValueError:
            self.reasons.append(f"bad date {value!r} in {column} (use YYYY-MM-DD)")
            return None

    def time(self, column: str) -> dt.time | None:
        value = self.text(column, 5)
        if value is None:
            return None
        try:
            if not re.fullmatch(r"\d{1,2}:\d{2}", value):
                raise ValueError
            hour, minute = (int(part) for part in value.split(":"))
            return dt.time(hour, minute)
        except ValueError:
            self.reasons.append(f"bad time {value!r} in {column} (use HH:MM)")
            return None

    def capacity(self) -> int | None:
        value = self.text("capacity", 6)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            self.reasons.append(f"capacity {value!r} is not a whole number")
            return None
        if not 1 <= number <= MAX_CAPACITY:
            self.reasons.append(f"capacity {number} is out of range (1 to {MAX_CAPACITY})")
            return None
        return number


def _utc(day: dt.date | None, time: dt.time | None, zone: ZoneInfo | None) -> dt.datetime | None:
    if day is None or time is None or zone is None:
        return None
    return dt.datetime.combine(day, time, tzinfo=zone).astimezone(dt.UTC)


def _read(text: str, columns: tuple[str, ...], optional: tuple[str, ...] = ()
          ) -> tuple[list[tuple[int, dict[str, str]]], list[RowError]]:
    """Rows with their line numbers, or the header's errors. `optional` columns may be
    left out of the header."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        return [], [RowError(1, "the file is empty")]
    errors = []
    missing = [c for c in columns if c not in header]
    if missing:
        errors.append(RowError(1, f"missing column(s): {', '.join(missing)}"))
    unknown = [c for c in header if c not in columns and c not in optional]
    if unknown:
        errors.append(RowError(1, f"unknown column(s): {', '.join(unknown)}"))
    if len(set(header)) != len(header):
        errors.append(RowError(1, "a column name appears twice"))
    if errors:
        return [], errors
    rows = []
    line = reader.line_num
    for values in reader:
        start, line = line + 1, reader.line_num
        if not any(v.strip() for v in values):
            continue  # blank line
        if len(values) != len(header):
            errors.append(RowError(start, f"expected {len(header)} values, found {len(values)}"))
            continue
        rows.append((start, dict(zip(header, values, strict=True))))
    if not rows and not errors:
        errors.append(RowError(1, "no rows"))
    return rows, errors


def check_sessions(text: str, existing_codes: set[str] = frozenset()) -> tuple[list[ClassroomSession], list[RowError]]:  # type: ignore[assignment]
    rows, errors = _read(text, SESSION_COLUMNS, SESSION_OPTIONAL_COLUMNS)
    sessions: list[ClassroomSession] = []
    codes: dict[str, int] = {}
    seen: dict[tuple[Any, ...], int] = {}
    for line, row in rows:
        check = _RowChecker(row)
        code, module = check.code(), check.module()
        city, venue = check.place("city", CITIES), check.text("venue", 200)
        venue_zh = check.chinese_name("venue_zh", 200)
        zone = check.zone()
        starts_at = _utc(check.date("start_date"), check.time("start_time"), zone)
        ends_at = _utc(check.date("end_date"), check.time("end_time"), zone)
        capacity = check.capacity()
        if starts_at and ends_at and ends_at <= starts_at:
            check.reasons.append("the session ends before it starts")
        if code is not None:
            if code.upper() in codes:
                check.reasons.append(f"duplicate code {code} (first on line {codes[code.upper()]})")
            elif code in existing_codes:
                check.reasons.append(f"code {code} already exists in the schedule")
            codes.setdefault(code.upper(), line)
        identity = (module, city, venue, starts_at)
        if None not in identity:
            if identity in seen:
                check.reasons.append(f"the same session as line {seen[identity]}")
            seen.setdefault(identity, line)
        if check.reasons:
            errors.append(RowError(line, "; ".join(check.reasons)))
            continue
        assert code and module and city and venue and starts_at and ends_at and zone and capacity
        sessions.append(ClassroomSession(
            code=code, module=module, city=city, venue=venue, venue_zh=venue_zh, starts_at=starts_at,
            ends_at=ends_at, timezone=zone.key, capacity=capacity, seats_taken=0, status=OfferStatus.OPEN,
        ))
    return sessions, sorted(errors, key=lambda e: e.line)


def check_slots(text: str, existing_codes: set[str] = frozenset()) -> tuple[list[ConsultationSlot], list[RowError]]:  # type: ignore[assignment]
    rows, errors = _read(text, SLOT_COLUMNS)
    slots: list[ConsultationSlot] = []
    codes: dict[str, int] = {}
    seen: dict[tuple[Any, ...], int] = {}
    for line, row in rows:
        check = _RowChecker(row)
        code, module = check.code(), check.module()
        region, expert = check.place("region", REGIONS), check.text("expert", 200)
        zone = check.zone()
        day = check.date("date")
        starts_at = _utc(day, check.time("start_time"), zone)
        ends_at = _utc(day, check.time("end_time"), zone)
        if starts_at and ends_at and ends_at <= starts_at:
            check.reasons.append("the slot ends before it starts")
        if code is not None:
            if code.upper() in codes:
                check.reasons.append(f"duplicate code {code} (first on line {codes[code.upper()]})")
            elif code in existing_codes:
                check.reasons.append(f"code {code} already exists in the schedule")
            codes.setdefault(code.upper(), line)
        identity = (expert, starts_at)
        if None not in identity:
            if identity in seen:
                check.reasons.append(f"{expert} already has a slot at this time (line {seen[identity]})")
            seen.setdefault(identity, line)
        if check.reasons:
            errors.append(RowError(line, "; ".join(check.reasons)))
            continue
        assert code and module and region and expert and starts_at and ends_at and zone
        slots.append(ConsultationSlot(
            code=code, module=module, region=region, expert=expert, starts_at=starts_at,
            ends_at=ends_at, timezone=zone.key, booked=False, status=OfferStatus.OPEN,
        ))
    return slots, sorted(errors, key=lambda e: e.line)


def _decode(data: bytes) -> str | RowError:
    try:
        return data.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError as exc:
        return RowError(1, f"the file is not UTF-8 ({exc.reason}); save it as CSV UTF-8")


def _import(db: Database, data: bytes | str, model: type[ClassroomSession | ConsultationSlot],
            check) -> ImportReport:
    """Validate every row, then import all of them in one transaction, or none."""
    text = data if isinstance(data, str) else _decode(data)
    if isinstance(text, RowError):
        return ImportReport(errors=[text])
    with db.session() as session:
        existing = set(session.scalars(select(model.code)))
        rows, errors = check(text, existing)
        if errors:
            return ImportReport(errors=errors)
        session.add_all(rows)
        return ImportReport(imported=len(rows))


def import_sessions(db: Database, data: bytes | str) -> ImportReport:
    """Import classroom sessions; all or nothing."""
    return _import(db, data, ClassroomSession, check_sessions)


def import_slots(db: Database, data: bytes | str) -> ImportReport:
    """Import consultation slots; all or nothing."""
    return _import(db, data, ConsultationSlot, check_slots)


def _sample_shift_weeks(sessions_text: str, today: dt.date | None = None) -> int:
    """Whole weeks (weekdays stay) to move the sample schedule so its first session is at
    least a week ahead: the sample keeps working after the dates in the file have passed."""
    rows = list(csv.DictReader(io.StringIO(sessions_text)))
    if not rows:
        return 0
    first = min(dt.date.fromisoformat(row["start_date"]) for row in rows)
    days = ((today or dt.date.today()) + dt.timedelta(days=7) - first).days
    return max(0, -(-days // 7))


def _shift_dates(text: str, date_columns: tuple[str, ...], weeks: int) -> str:
    if weeks == 0:
        return text
    rows = list(csv.DictReader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        for column in date_columns:
            row[column] = (dt.date.fromisoformat(row[column]) + dt.timedelta(weeks=weeks)).isoformat()
        writer.writerow(row)
    return out.getvalue()


def load_sample_if_empty(db: Database) -> tuple[int, int]:
    """Load data/schedule/*.csv when the store has no sessions (resp. slots), so a local
    chat has something to book. Returns (sessions, slots) imported."""
    with db.session() as session:
        has_sessions = session.scalar(select(func.count(ClassroomSession.id))) or 0
        has_slots = session.scalar(select(func.count(ConsultationSlot.id))) or 0
    sessions = slots = 0
    sessions_text = SAMPLE_SESSIONS.read_text(encoding="utf-8")
    weeks = _sample_shift_weeks(sessions_text)  # the same shift keeps visits after classes
    if not has_sessions:
        report = import_sessions(db, _shift_dates(sessions_text, ("start_date", "end_date"), weeks))
        if not report.ok:
            raise ValueError("sample sessions are invalid: " + "; ".join(map(str, report.errors)))
        sessions = report.imported
    if not has_slots:
        report = import_slots(db, _shift_dates(SAMPLE_SLOTS.read_text(encoding="utf-8"), ("date",), weeks))
        if not report.ok:
            raise ValueError("sample slots are invalid: " + "; ".join(map(str, report.errors)))
        slots = report.imported
    return sessions, slots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m store.schedule", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["import-sessions", "import-slots", "load-sample"])
    parser.add_argument("file", nargs="?", type=Path)
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL or ./var")
    args = parser.parse_args(argv)
    db = Database(args.database_url)
    db.create_all()
    if args.command == "load-sample":
        sessions, slots = load_sample_if_empty(db)
        print(f"loaded {sessions} sessions and {slots} slots")
        return 0
    if args.file is None:
        parser.error("FILE is required")
    importer = import_sessions if args.command == "import-sessions" else import_slots
    report = importer(db, args.file.read_bytes())
    if not report.ok:
        print(f"{args.file}: not imported, {len(report.errors)} problem(s):", file=sys.stderr)
        for error in report.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    print(f"{args.file}: imported {report.imported} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
