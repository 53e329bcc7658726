"""Staff CSV import: every bad row reported by line number; a file with errors imports nothing."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from store import schedule
from store.models import ClassroomSession, ConsultationSlot

HEADER = "code,module,city,venue,start_date,start_time,end_date,end_time,timezone,capacity\n"
GOOD = "M1-DG-1,1,Dongguan,Nancheng centre,2027-01-12,09:00,2027-01-13,17:00,Asia/Shanghai,5\n"
SLOT_HEADER = "code,module,region,expert,date,start_time,end_time,timezone\n"
GOOD_SLOT = "C1-GD-1,1,Guangdong,Chen Jing,2027-01-26,09:30,12:30,Asia/Shanghai\n"


def _count(db, model):
    with db.session() as s:
        return s.scalar(select(func.count(model.id)))


def test_sample_schedule_imports_cleanly_and_once(any_db):
    sessions, slots = schedule.load_sample_if_empty(any_db)
    assert sessions >= 20 and slots >= 40
    assert schedule.load_sample_if_empty(any_db) == (0, 0)
    with any_db.session() as s:
        cities = set(s.scalars(select(ClassroomSession.city)))
        modules = set(s.scalars(select(ClassroomSession.module)))
    assert {"Guangzhou", "Dongguan", "Shenzhen", "Foshan", "Shanghai", "Chongqing", "Chengdu",
            "Dalian"} <= cities
    assert modules == {1, 2, 3, 4, 5}


def test_local_times_are_stored_in_utc(sqlite_db):
    assert schedule.import_sessions(sqlite_db, HEADER + GOOD).imported == 1
    with sqlite_db.session() as s:
        row = s.scalars(select(ClassroomSession)).one()
    assert row.starts_at == dt.datetime(2027, 1, 12, 1, 0, tzinfo=dt.UTC)
    assert row.ends_at == dt.datetime(2027, 1, 13, 9, 0, tzinfo=dt.UTC)
    assert row.timezone == "Asia/Shanghai"
    assert schedule.format_date(row.starts_at, row.timezone, "en") == "12 Jan 2027 (Tue)"
    assert schedule.format_date(row.starts_at, row.timezone, "zh") == "2027年1月12日（周二）"


BAD_ROWS = [
    ("M1-X,1,Dongguan,V,2027-13-01,09:00,2027-01-13,17:00,Asia/Shanghai,5", "bad date"),
    ("M1-X,1,Dongguan,V,2027-01-12,9h,2027-01-13,17:00,Asia/Shanghai,5", "bad time"),
    ("M1-X,1,Dongguan,V,2027-01-12,09:00,2027-01-13,17:00,Asia/Shanghai,-3", "out of range"),
    ("M1-X,1,Dongguan,V,2027-01-12,09:00,2027-01-13,17:00,Asia/Shanghai,five", "not a whole number"),
    ("M1-X,6,Dongguan,V,2027-01-12,09:00,2027-01-13,17:00,Asia/Shanghai,5", "unknown module"),
    ("M1-X,1,Atlantis,V,2027-01-12,09:00,2027-01-13,17:00,Asia/Shanghai,5", "unknown city"),
    ("M1-X,1,Dongguan,V,2027-01-12,09:00,2027-01-13,17:00,China/Beijing,5", "unknown time zone"),
    ("M1-X,1,Dongguan," + "v" * 500 + ",2027-01-12,09:00,2027-01-13,17:00,Asia/Shanghai,5", "longer than 200"),
    ("M1-X,1,Dongguan,<b>Venue</b>,2027-01-12,09:00,2027-01-13,17:00,Asia/Shanghai,5", "markup"),
    ("M1-X,1,Dongguan,V,2027-01-13,09:00,2027-01-12,17:00,Asia/Shanghai,5", "ends before it starts"),
    ("M1-X,1,Dongguan,,2027-01-12,09:00,2027-01-13,17:00,Asia/Shanghai,5", "venue is empty"),
    ("M1-X,1,Dongguan,V,2027-01-12,09:00,2027-01-13,17:00,Asia/Shanghai", "expected 10 values"),
    ("M1 X!,1,Dongguan,V,2027-01-12,09:00,2027-01-13,17:00,Asia/Shanghai,5", "may only use"),
]


@pytest.mark.parametrize("row,reason", BAD_ROWS, ids=[r for _, r in BAD_ROWS])
def test_a_bad_row_is_reported_and_nothing_is_imported(sqlite_db, row, reason):
    report = schedule.import_sessions(sqlite_db, HEADER + GOOD + row + "\n")
    assert not report.ok and report.imported == 0
    assert [e.line for e in report.errors] == [3]
    assert reason in report.errors[0].reason
    assert _count(sqlite_db, ClassroomSession) == 0


def test_every_bad_row_is_listed_with_its_line(sqlite_db):
    text = (HEADER + GOOD + GOOD.replace("M1-DG-1", "M1-dg-1")  # duplicate code (any case)
            + GOOD.replace("M1-DG-1", "M1-DG-2")  # the same session under another code
            + "\n"  # blank lines are allowed
            + GOOD.replace("M1-DG-1", "M1-DG-3").replace(",1,", ",9,"))
    report = schedule.import_sessions(sqlite_db, text)
    assert [(e.line, e.reason.split(" (")[0]) for e in report.errors] == [
        (3, "duplicate code M1-dg-1"),
        (4, "the same session as line 2"),
        (6, "unknown module '9'"),
    ]
    assert _count(sqlite_db, ClassroomSession) == 0


def test_missing_and_unknown_columns(sqlite_db):
    report = schedule.import_sessions(sqlite_db, HEADER.replace(",capacity", ",seats") + GOOD)
    assert [str(e) for e in report.errors] == [
        "line 1: missing column(s): capacity", "line 1: unknown column(s): seats"]
    assert schedule.import_sessions(sqlite_db, b"").errors[0].reason == "the file is empty"
    assert (
        "not UTF-8"
        in schedule.import_sessions(sqlite_db, (HEADER + GOOD).encode("gbk") + "东莞".encode("gbk")).errors[0].reason
    )


def test_code_already_in_the_schedule(sqlite_db):
    assert schedule.import_sessions(sqlite_db, HEADER + GOOD).ok
    report = schedule.import_sessions(sqlite_db, HEADER + GOOD.replace("Nancheng", "Humen"))
    assert "already exists" in report.errors[0].reason
    assert _count(sqlite_db, ClassroomSession) == 1


def test_excel_bom_and_chinese_city_names(sqlite_db):
    text = "\ufeff" + HEADER + GOOD.replace(",Dongguan,", ",东莞,")
    assert schedule.import_sessions(sqlite_db, text.encode("utf-8")).imported == 1
    with sqlite_db.session() as s:
        assert s.scalar(select(ClassroomSession.city)) == "Dongguan"


def test_slot_import_checks(sqlite_db):
    bad = (SLOT_HEADER + GOOD_SLOT
           + GOOD_SLOT.replace("C1-GD-1", "C1-GD-2")  # same expert, same time
           + "C1-GD-3,1,Mars,Chen Jing,2027-01-27,09:30,12:30,Asia/Shanghai\n"
           + "C1-GD-4,1,Guangdong,Chen Jing,2027-01-28,12:30,09:30,Asia/Shanghai\n")
    report = schedule.import_slots(sqlite_db, bad)
    assert [e.line for e in report.errors] == [3, 4, 5]
    assert "already has a slot" in report.errors[0].reason
    assert "unknown region" in report.errors[1].reason
    assert "ends before it starts" in report.errors[2].reason
    assert _count(sqlite_db, ConsultationSlot) == 0
    assert schedule.import_slots(sqlite_db, SLOT_HEADER + GOOD_SLOT).imported == 1


def test_command_line(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + GOOD + GOOD.replace("M1-DG-1", "M1-DG-9").replace("2027-01-12", "2027-02-30"))
    assert schedule.main(["import-sessions", str(bad), "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert "not imported" in err and "line 3: bad date '2027-02-30' in start_date" in err
    good = tmp_path / "good.csv"
    good.write_text(HEADER + GOOD)
    assert schedule.main(["import-sessions", str(good), "--database-url", url]) == 0
    assert "imported 1 rows" in capsys.readouterr().out
    slots = tmp_path / "slots.csv"
    slots.write_text(SLOT_HEADER + GOOD_SLOT)
    assert schedule.main(["import-slots", str(slots), "--database-url", url]) == 0


def test_places():
    assert schedule.canonical_place("东莞市") == "Dongguan"
    assert schedule.canonical_place("  dongguan ") == "Dongguan"
    assert schedule.canonical_place("我在深圳") == "Shenzhen"
    assert schedule.canonical_place("Narnia") is None
    assert schedule.region_of("Chengdu") == "Sichuan"
    assert sorted(schedule.cities_in("Guangdong")) == ["Dongguan", "Foshan", "Guangzhou", "Shenzhen"]
    assert schedule.place_name("Dongguan", "zh") == "东莞"


def test_sample_schedule_moves_into_the_future_by_whole_weeks():
    import datetime as dt

    from store.schedule import SAMPLE_SESSIONS, SAMPLE_SLOTS, _sample_shift_weeks, _shift_dates

    text = SAMPLE_SESSIONS.read_text(encoding="utf-8")
    assert _sample_shift_weeks(text, dt.date(2026, 11, 1)) == 0
    weeks = _sample_shift_weeks(text, dt.date(2028, 3, 1))
    shifted = _shift_dates(text, ("start_date", "end_date"), weeks)
    starts = [dt.date.fromisoformat(line.split(",")[-6]) for line in shifted.splitlines()[1:] if line]
    assert min(starts) >= dt.date(2028, 3, 8)
    original = [dt.date.fromisoformat(line.split(",")[-6]) for line in text.splitlines()[1:] if line]
    assert [d.weekday() for d in starts] == [d.weekday() for d in original]
    slots = _shift_dates(SAMPLE_SLOTS.read_text(encoding="utf-8"), ("date",), weeks)
    assert "2028-" in slots


# --- Chinese venue names (optional venue_zh column) ------------------------------------------

ZH_HEADER = HEADER.replace(",venue,", ",venue,venue_zh,")
ZH_GOOD = GOOD.replace(",Nancheng centre,", ",Nancheng centre,东莞南城培训中心,")


def test_chinese_venue_name_is_imported_and_optional(sqlite_db):
    no_name = (
        ZH_GOOD.replace("M1-DG-1", "M1-DG-2")
        .replace("东莞南城培训中心", "")
        .replace("01-12", "01-19")
        .replace("01-13", "01-20")
    )
    report = schedule.import_sessions(sqlite_db, (ZH_HEADER + ZH_GOOD + no_name).encode("utf-8"))
    assert report.ok and report.imported == 2
    with sqlite_db.session() as s:
        assert list(s.scalars(select(ClassroomSession.venue_zh).order_by(ClassroomSession.code))) == [
            "东莞南城培训中心", None]
    # a file without the column still imports (existing schedules keep working)
    assert schedule.import_sessions(sqlite_db, HEADER + GOOD.replace("M1-DG-1", "M1-DG-3")).ok


BAD_VENUE_ZH = [
    ("Nancheng training centre", "has no Chinese characters"),
    ("<b>东莞</b>", "markup"),
    ("东" * 201, "longer than 200"),
]


@pytest.mark.parametrize("venue_zh,reason", BAD_VENUE_ZH, ids=[r for _, r in BAD_VENUE_ZH])
def test_a_bad_chinese_venue_name_is_reported_and_nothing_is_imported(sqlite_db, venue_zh, reason):
    bad = ZH_GOOD.replace("M1-DG-1", "M1-DG-2").replace("东莞南城培训中心", venue_zh)
    report = schedule.import_sessions(sqlite_db, ZH_HEADER + ZH_GOOD + bad)
    assert [e.line for e in report.errors] == [3]
    assert reason in report.errors[0].reason and "venue_zh" in report.errors[0].reason
    assert _count(sqlite_db, ClassroomSession) == 0


def test_command_line_imports_chinese_venue_names(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    path = tmp_path / "sessions.csv"
    path.write_text(ZH_HEADER + ZH_GOOD, encoding="utf-8")
    assert schedule.main(["import-sessions", str(path), "--database-url", url]) == 0
    assert "imported 1 rows" in capsys.readouterr().out


def test_every_sample_session_has_a_chinese_venue_name(any_db):
    schedule.load_sample_if_empty(any_db)
    with any_db.session() as s:
        rows = s.execute(select(ClassroomSession.venue, ClassroomSession.venue_zh)).all()
    assert rows and all(zh and zh != venue for venue, zh in rows)
    # one Chinese name per venue
    assert len({venue for venue, _ in rows}) == len(set(rows))
