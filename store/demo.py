"""Demo data for trying the console and for its browser test: a few weeks of plausible
conversations in English and Chinese, handoffs in every state, enquiries and a schedule.

`python -m console demo-data` (or `store.demo.seed`) fills an empty store; never run it on a live database.
"""
from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import func, select

from store.db import Database
from store.kinds import Channel, EligibilityOutcome as Outcome, HandoffStatus, OfferKind
from store.models import (
    Booking,
    ClassroomSession,
    Enquiry,
    Handoff,
    HandoffNote,
    TranscriptLine,
    User,
    WaitlistEntry,
    utcnow,
)

PEOPLE = [
    # display name, username, language, Telegram id
    ("Wang Lei", "wanglei_qc", "zh", "5550001001"),
    ("Sarah Chen", "sarahchen", "en", "5550001002"),
    ("李娜", None, "zh", "5550001003"),
    ("Tom Becker", "tbecker", "en", "5550001004"),
    ("张伟", "zhangwei88", "zh", "5550001005"),
    ("Priya Nair", None, "en", "5550001006"),
    ("刘洋", "liuyang_hr", "zh", "5550001007"),
    ("Ahmed Khan", "akhan", "en", "5550001008"),
]

QUESTIONS = {
    "en": [
        ("What modules does SCORE have?", "faq_modules", 0.97),
        ("How is the training organised, classroom or on site?", "faq_format", 0.93),
        ("Hello", "greet", 0.99),
        ("Can you tell me about the five modules?", "faq_modules", 0.91),
        ("Is the training in the factory or somewhere else?", "faq_format", 0.88),
        ("Do you sell forklifts?", "out_of_scope", 0.81),
        ("what about the cost for 2 people from our line", "nlu_fallback", 0.31),
        ("thanks a lot", "thank", 0.98),
    ],
    "zh": [
        ("SCORE 有哪些模块？", "faq_modules", 0.95),
        ("培训是在工厂还是在教室？", "faq_format", 0.92),
        ("你好", "greet", 0.99),
        ("培训费用怎么算？我们有两个车间", "nlu_fallback", 0.28),
        ("你们卖机器吗", "out_of_scope", 0.77),
        ("第五个模块讲什么", "faq_modules", 0.89),
        ("谢谢", "thank", 0.99),
    ],
}
ANSWERS = {
    "en": "SCORE has five modules: workplace cooperation, quality management, clean production, "
          "human resource management and occupational safety and health.",
    "zh": "SCORE 共有五个模块：工作场所合作、质量管理、清洁生产、人力资源管理和职业安全健康。",
}
FALLBACK = {
    "en": "Sorry, I didn't understand. Could you say it another way, or type /human for a person?",
    "zh": "抱歉，我没有理解。可以换个说法吗？或者输入 /human 联系工作人员。",
}


def seed(db: Database, now: dt.datetime | None = None, rng_seed: int = 7) -> dict[str, int]:
    """Fill the store with demo data; returns a few ids the browser test uses."""
    rng = random.Random(rng_seed)
    now = now or utcnow()
    ids: dict[str, int] = {}
    with db.session() as s:
        if s.scalar(select(func.count()).select_from(User)):
            raise RuntimeError("the store already has users: demo data goes into an empty store")
        sessions = []
        for i, (city, module, cap, taken) in enumerate(
            [("Suzhou", 1, 8, 6), ("Dongguan", 1, 6, 6), ("Ningbo", 2, 8, 3), ("Suzhou", 3, 10, 1)]
        ):
            start = (now + dt.timedelta(days=14 + 9 * i)).replace(hour=1, minute=0, second=0,
                                                                  microsecond=0)
            cs = ClassroomSession(
                code=f"M{module}-{city[:3].upper()}-{i + 1:02d}", module=module, city=city,
                venue=f"{city} TÜV Rheinland training centre", starts_at=start,
                ends_at=start + dt.timedelta(days=1, hours=8), capacity=cap, seats_taken=taken,
            )
            s.add(cs)
            sessions.append(cs)
        s.flush()
        for n, (name, username, lang, tg_id) in enumerate(PEOPLE):
            first = now - dt.timedelta(days=rng.randint(1, 27), hours=rng.randint(0, 20))
            user = User(
                channel=Channel.TELEGRAM, external_id=tg_id, sender_id=f"tg-{tg_id}",
                chat_id=int(tg_id), display_name=name, username=username, language=lang,
                created_at=first, last_seen_at=first,
            )
            s.add(user)
            s.flush()
            when = first
            for text, intent, conf in rng.sample(QUESTIONS[lang], k=rng.randint(3, 5)):
                when += dt.timedelta(minutes=rng.randint(1, 40), hours=rng.choice((0, 0, 0, 20)))
                when = min(when, now - dt.timedelta(hours=2))  # never in the future
                s.add(TranscriptLine(user_id=user.id, chat_id=user.chat_id, direction="in",
                                     language=lang, text=text, intent=intent, confidence=conf,
                                     created_at=when))
                answer = FALLBACK[lang] if intent in ("nlu_fallback", "out_of_scope") else ANSWERS[lang]
                s.add(TranscriptLine(user_id=user.id, chat_id=user.chat_id, direction="out",
                                     language=lang, text=answer,
                                     created_at=when + dt.timedelta(seconds=2)))
            user.last_seen_at = when
            ids[f"user{n}"] = user.id
            if n % 2 == 0 or n == 5:
                outcome = (Outcome.ELIGIBLE, Outcome.BORDERLINE, Outcome.ELIGIBLE, Outcome.NOT_ELIGIBLE,
                           Outcome.ELIGIBLE)[n % 5]
                enquiry = Enquiry(
                    user_id=user.id, employees_low=50 + 40 * n, employees_high=99 + 60 * n,
                    sector="manufacturing", sector_kind=("garments", "auto parts", "electronics",
                                                         "furniture")[n % 4],
                    country="China", province="Jiangsu", city=("Suzhou", "Wuxi", "Kunshan")[n % 3],
                    supplies_brands=n % 3 != 1, can_commit=True, outcome=outcome,
                    reason="Size and sector fit SCORE." if outcome == Outcome.ELIGIBLE else
                    "Fewer than 50 employees." if outcome == Outcome.NOT_ELIGIBLE else
                    "Services company: staff decide.",
                    language=lang, consent=True, factory_name=f"{name.split()[0]} Precision Co.",
                    contact_name=name, contact=f"+86 138 0000 {1000 + n}",
                    created_at=when + dt.timedelta(minutes=5),
                )
                s.add(enquiry)
                s.flush()
                if outcome == Outcome.ELIGIBLE:
                    session = sessions[n % 3]
                    s.add(Booking(
                        reference=f"SC-DEMO{n:02d}", kind=OfferKind.CLASSROOM, session_id=session.id,
                        user_id=user.id, enquiry_id=enquiry.id,
                        factory_name=enquiry.factory_name,
                        attendees=[{"name": name, "role": "manager"},
                                   {"name": "Worker rep", "role": "worker"}],
                        contact=enquiry.contact, language=lang,
                        created_at=when + dt.timedelta(minutes=9),
                    ))
        # The conversation the browser test looks for: a handoff about fees, with markup in it.
        user = User(
            channel=Channel.TELEGRAM, external_id="5550009999", sender_id="tg-5550009999",
            chat_id=5550009999, display_name="Chen Jing", username="chenjing_ops", language="en",
            paused=True, created_at=now - dt.timedelta(hours=3), last_seen_at=now,
        )
        s.add(user)
        s.flush()
        ids["handoff_user"] = user.id
        base = now - dt.timedelta(minutes=42)
        for offset, direction, line_text, line_intent, line_conf in [
            (0, "in", "Hi, our garment factory in Kunshan has 320 workers.", "greet", 0.62),
            (1, "out", "Hello! I'm the SCORE training assistant.", None, None),
            (3, "in", "How much are the training fees for module 2 <script>alert(1)</script>?",
             "nlu_fallback", 0.22),
            (4, "out", FALLBACK["en"], None, None),
            (6, "in", "I want to talk to a person, call me at +86 139 1234 5678", "request_human",
             0.96),
            (7, "out", "I've asked a colleague to join. The assistant is paused until they reply.",
             None, None),
        ]:
            s.add(TranscriptLine(user_id=user.id, chat_id=user.chat_id, direction=direction,
                                 language="en", text=line_text, intent=line_intent, confidence=line_conf,
                                 created_at=base + dt.timedelta(minutes=offset)))
        handoff = Handoff(user_id=user.id, reason="asked", detail="Training fees for module 2",
                          language="en", created_at=base + dt.timedelta(minutes=6))
        s.add(handoff)
        s.flush()
        ids["handoff"] = handoff.id
        # Handoffs of the other users, in every state, for the queue and the dashboard.
        for k in range(1, 8):
            status = (HandoffStatus.WAITING, HandoffStatus.CLAIMED, HandoffStatus.RESOLVED,
                      HandoffStatus.WAITING, HandoffStatus.RESOLVED, HandoffStatus.CLAIMED,
                      HandoffStatus.RESOLVED)[k - 1]
            created = now - dt.timedelta(days=k * 3 % 26, hours=k * 5 % 23, minutes=7 * k)
            claimed_after = dt.timedelta(minutes=(3, 12, 25, 70, 8, 150, 40)[k - 1])
            h = Handoff(
                user_id=ids[f"user{k}"], reason=("misunderstood", "asked", "borderline",
                                                 "unknown_fact")[k % 4],
                language=PEOPLE[k][2], status=status, created_at=created,
                tags=("fees", "fees,module-2", "", "eligibility", "", "schedule", "")[k - 1],
            )
            if status != HandoffStatus.WAITING:
                h.claimed_by = ("anna", "li.ming")[k % 2]
                h.claimed_at = created + claimed_after
            if status == HandoffStatus.RESOLVED:
                h.resolved_at = created + claimed_after + dt.timedelta(minutes=20)
            else:
                s.get(User, ids[f"user{k}"]).paused = True  # type: ignore[union-attr]
            s.add(h)
            s.flush()
            if k == 2:
                s.add(HandoffNote(handoff_id=h.id, author="li.ming",
                                  text="Asked about fees; sent the 2024 price list."))
        s.add(WaitlistEntry(session_id=sessions[1].id, user_id=ids["user3"],
                            factory_name="Becker Tools", language="en"))
        s.add(WaitlistEntry(session_id=sessions[1].id, user_id=ids["user5"],
                            factory_name="Nair Textiles", language="en"))
    return ids
