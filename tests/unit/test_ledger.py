"""Replayed repayments allocate to the cent, age arrears by date and classify by the rules."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantcrm.loans.ledger import (
    BUCKETS,
    CLASSES,
    DEFAULT_RULES,
    Allocation,
    Line,
    Overpayment,
    Payment,
    Rule,
    arrears,
    bucket_for,
    payoff_amount,
    replay,
    suggest_classification,
)
from tenantcrm.loans.schedule import (
    BULLET,
    EQUAL_INSTALLMENT,
    INTEREST_ONLY,
    METHODS,
    build_schedule,
    cents,
)

START = date(2025, 1, 15)
RATE = Decimal("0.06")
AMOUNT = Decimal("120000.00")
SCHEDULE = build_schedule(AMOUNT, RATE, 12, EQUAL_INSTALLMENT, START)
MONTHLY = Decimal("10327.97")  # 120,000 at 6% over 12 months; the last instalment is 10,327.99
CENT = Decimal("0.01")


def due(number: int) -> date:
    return SCHEDULE.installments[number - 1].due_date


def book(*payments: tuple[date, str | Decimal]) -> list[Payment]:
    return [Payment(f"p{n}", day, Decimal(amount)) for n, (day, amount) in enumerate(payments, 1)]


def ledger_of(*payments: tuple[date, str | Decimal]):
    return replay(SCHEDULE, RATE, EQUAL_INSTALLMENT, book(*payments))


def principal_of(ledger) -> Decimal:
    return sum((line.principal for line in ledger.lines), Decimal("0"))


def test_the_worked_schedule():
    rows = SCHEDULE.installments
    assert {row.payment for row in rows[:-1]} == {MONTHLY} and rows[-1].payment == Decimal("10327.99")
    assert (rows[0].interest, rows[0].principal, rows[0].due_date) == (
        Decimal("600.00"),
        Decimal("9727.97"),
        date(2025, 2, 15),
    )


def test_paying_every_instalment_on_time_keeps_it_current_and_settles_on_the_last_due_date():
    ledger = replay(
        SCHEDULE,
        RATE,
        EQUAL_INSTALLMENT,
        book(*((row.due_date, row.payment) for row in SCHEDULE.installments)),
    )
    for row in SCHEDULE.installments:
        for day in (row.due_date - timedelta(days=1), row.due_date, row.due_date + timedelta(days=1)):
            state = arrears(ledger, day)
            assert (state.days_past_due, state.bucket, state.overdue_amount) == (0, "current", 0)
    assert ledger.settled_on == date(2026, 1, 15)
    assert ledger.outstanding_principal == 0
    assert [line.paid_on for line in ledger.lines] == [row.due_date for row in SCHEDULE.installments]
    assert [(line.principal, line.interest) for line in ledger.lines] == [
        (row.principal, row.interest) for row in SCHEDULE.installments
    ]
    assert arrears(ledger, date(2026, 2, 1)).next_due is None


def test_without_payments_nothing_is_late_on_the_due_date():
    ledger = ledger_of()
    on_due = arrears(ledger, due(1))
    assert (on_due.days_past_due, on_due.overdue_amount, on_due.outstanding_principal) == (0, 0, AMOUNT)
    assert on_due.next_due == Line(1, due(1), Decimal("9727.97"), Decimal("600.00"))
    assert ledger.settled_on is None


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (1, "1-30"),
        (30, "1-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "91-180"),
        (180, "91-180"),
        (181, "181-360"),
        (360, "181-360"),
        (361, "360+"),
        (500, "360+"),
    ],
)
def test_a_missed_instalment_ages_from_the_day_after_its_due_date(days, bucket):
    state = arrears(ledger_of(), due(1) + timedelta(days=days))
    assert (state.days_past_due, state.bucket) == (days, bucket)


def test_overdue_amounts_count_every_late_instalment():
    state = arrears(ledger_of(), date(2025, 3, 18))  # lines 1 and 2 late, line 3 next
    assert state.days_past_due == 31 and state.bucket == "31-60"
    assert state.overdue_interest == Decimal("600.00") + Decimal("551.36")
    assert state.overdue_principal == Decimal("9727.97") + Decimal("9776.61")
    assert state.overdue_amount == 2 * MONTHLY
    assert state.next_due is not None and state.next_due.number == 3


def test_a_partial_payment_pays_interest_first_then_principal():
    ledger = ledger_of((due(1), "1000.00"), (date(2025, 2, 20), "300.00"))
    assert ledger.allocations == [
        Allocation("p1", due(1), 1, Decimal("600.00"), Decimal("400.00")),
        Allocation("p2", date(2025, 2, 20), 1, Decimal("0.00"), Decimal("300.00")),
    ]
    first = ledger.lines[0]
    assert (first.interest_paid, first.principal_paid, first.paid_on) == (
        Decimal("600.00"),
        Decimal("700.00"),
        None,
    )
    state = arrears(ledger, date(2025, 2, 16))  # only the first part by then
    assert (state.days_past_due, state.overdue_interest, state.overdue_principal) == (
        1,
        Decimal("0.00"),
        Decimal("9327.97"),
    )
    assert arrears(ledger, date(2025, 2, 21)).overdue_principal == Decimal("9027.97")
    assert ledger.outstanding_principal == AMOUNT - Decimal("700.00")


def test_a_late_payment_clears_the_oldest_instalment_first():
    ledger = ledger_of((date(2025, 4, 10), MONTHLY))
    assert [(a.number, a.interest, a.principal) for a in ledger.allocations] == [
        (1, Decimal("600.00"), Decimal("9727.97"))
    ]
    state = arrears(ledger, date(2025, 4, 10))
    assert state.days_past_due == (date(2025, 4, 10) - due(2)).days == 26
    assert state.overdue_amount == MONTHLY


def test_arrears_as_of_dates_around_a_late_payment():
    ledger = ledger_of((date(2025, 4, 10), 2 * MONTHLY))  # two months late, both cleared
    assert [a.number for a in ledger.allocations] == [1, 2]
    before = arrears(ledger, date(2025, 4, 9))
    assert (before.days_past_due, before.bucket, before.overdue_amount) == (53, "31-60", 2 * MONTHLY)
    assert before.outstanding_principal == AMOUNT
    after = arrears(ledger, date(2025, 4, 10))
    assert (after.days_past_due, after.bucket, after.overdue_amount) == (0, "current", 0)
    assert after.outstanding_principal == Decimal("100495.42")
    assert arrears(ledger, date(2025, 4, 16)).days_past_due == 1  # the third is now late


def test_an_instalment_paid_a_few_days_early():
    ledger = ledger_of((date(2025, 2, 10), MONTHLY))
    assert ledger.allocations == [
        Allocation("p1", date(2025, 2, 10), 1, Decimal("600.00"), Decimal("9727.97"))
    ]
    assert [(line.principal, line.interest) for line in ledger.lines] == [
        (row.principal, row.interest) for row in SCHEDULE.installments
    ]
    assert ledger.lines[0].paid_on == date(2025, 2, 10)
    assert arrears(ledger, date(2025, 2, 9)).next_due.number == 1  # not paid yet then
    assert arrears(ledger, date(2025, 2, 10)).next_due.number == 2
    assert arrears(ledger, date(2025, 2, 16)).days_past_due == 0


def test_an_early_part_payment_goes_to_the_instalment_in_progress():
    ledger = ledger_of((date(2025, 2, 1), "700.00"))
    assert ledger.allocations == [Allocation("p1", date(2025, 2, 1), 1, Decimal("600.00"), Decimal("100.00"))]
    assert arrears(ledger, date(2025, 2, 16)).overdue_amount == MONTHLY - Decimal("700.00")


def test_a_large_prepayment_re_amortises_the_later_instalments():
    ledger = ledger_of((due(1), MONTHLY), (date(2025, 3, 10), MONTHLY + 50000))
    second, later = ledger.lines[1], ledger.lines[2:]
    assert (second.principal, second.principal_paid, second.interest_paid, second.paid_on) == (
        Decimal("59776.61"),
        Decimal("59776.61"),
        Decimal("551.36"),
        date(2025, 3, 10),
    )
    assert ledger.allocations[-1] == Allocation(
        "p2", date(2025, 3, 10), 2, Decimal("551.36"), Decimal("59776.61")
    )
    assert [line.number for line in later] == list(range(3, 13))
    assert [line.due_date for line in later] == [row.due_date for row in SCHEDULE.installments[2:]]
    assert {line.payment for line in later[:-1]} == {Decimal("5189.44")}
    assert later[-1].payment == Decimal("5189.46")
    assert (later[0].interest, later[0].principal) == (Decimal("252.48"), Decimal("4936.96"))
    assert principal_of(ledger) == AMOUNT
    assert ledger.outstanding_principal == Decimal("50495.42")
    assert ledger.settled_on is None
    assert arrears(ledger, date(2025, 4, 16)).overdue_amount == Decimal("5189.44")


def test_a_prepayment_onto_an_instalment_already_paid_early_leaves_it_paid_from_then():
    ledger = ledger_of((due(1), MONTHLY), (date(2025, 3, 5), MONTHLY), (date(2025, 3, 10), "50000.00"))
    assert ledger.allocations[-1] == Allocation(
        "p3", date(2025, 3, 10), 2, Decimal("0.00"), Decimal("50000.00")
    )
    second = ledger.lines[1]
    assert (second.principal, second.paid_on) == (Decimal("59776.61"), date(2025, 3, 5))
    assert arrears(ledger, date(2025, 3, 7)).next_due.number == 3  # paid on the 5th, topped up later
    assert arrears(ledger, date(2025, 3, 4)).next_due.number == 2


def test_paying_the_payoff_amount_settles_the_loan_early():
    on_time = [(due(n), MONTHLY) for n in range(1, 5)]
    ledger = ledger_of(*on_time)
    payoff = payoff_amount(ledger, date(2025, 6, 1))
    assert payoff == Decimal("403.98") + Decimal("80795.31")  # line 5's interest + the balance
    settled = ledger_of(*on_time, (date(2025, 6, 1), payoff))
    assert settled.settled_on == date(2025, 6, 1)
    assert [line.number for line in settled.lines] == [1, 2, 3, 4, 5]
    last = settled.lines[-1]
    assert (last.principal, last.interest, last.outstanding) == (
        Decimal("80795.31"),
        Decimal("403.98"),
        Decimal("0.00"),
    )
    assert principal_of(settled) == AMOUNT and settled.outstanding_principal == 0
    assert payoff_amount(settled, date(2025, 6, 2)) == 0
    state = arrears(settled, date(2026, 6, 1))
    assert (state.days_past_due, state.outstanding_principal, state.next_due) == (0, 0, None)


def test_more_than_the_payoff_is_an_overpayment():
    on_time = [(due(n), MONTHLY) for n in range(1, 5)]
    with pytest.raises(Overpayment) as refused:
        ledger_of(*on_time, (date(2025, 6, 1), Decimal("81199.30")))
    assert refused.value.payment_id == "p5" and refused.value.maximum == Decimal("81199.29")
    payoff = Decimal("81199.29")
    with pytest.raises(Overpayment) as after_settling:
        ledger_of(*on_time, (date(2025, 6, 1), payoff), (date(2025, 6, 2), "0.01"))
    assert after_settling.value.payment_id == "p6" and after_settling.value.maximum == 0


def test_after_the_last_due_date_the_payoff_is_what_is_owed():
    ledger = ledger_of(*((due(n), MONTHLY) for n in range(1, 12)))
    assert payoff_amount(ledger, date(2026, 3, 1)) == Decimal("10327.99")
    with pytest.raises(Overpayment) as refused:
        ledger_of(*((due(n), MONTHLY) for n in range(1, 12)), (date(2026, 3, 1), "10328.00"))
    assert refused.value.maximum == Decimal("10327.99")


def test_bullet_loans_pay_interest_in_full_and_age_from_maturity():
    schedule = build_schedule(Decimal("100000.00"), Decimal("0.072"), 6, BULLET, START)
    (only,) = schedule.installments
    assert (only.due_date, only.payment) == (date(2025, 7, 15), Decimal("103600.00"))
    unpaid = replay(schedule, Decimal("0.072"), BULLET, [])
    assert payoff_amount(unpaid, date(2025, 5, 1)) == Decimal("103600.00")
    early = replay(schedule, Decimal("0.072"), BULLET, book((date(2025, 5, 1), "103600.00")))
    assert early.settled_on == date(2025, 5, 1) and early.lines[0].paid_on == date(2025, 5, 1)
    part = replay(schedule, Decimal("0.072"), BULLET, book((only.due_date, "5000.00")))
    assert part.allocations == [Allocation("p1", only.due_date, 1, Decimal("3600.00"), Decimal("1400.00"))]
    state = arrears(part, date(2025, 7, 16))
    assert (state.days_past_due, state.overdue_principal, state.overdue_interest) == (
        1,
        Decimal("98600.00"),
        Decimal("0.00"),
    )
    with pytest.raises(Overpayment) as refused:
        replay(schedule, Decimal("0.072"), BULLET, book((date(2025, 5, 1), "103600.01")))
    assert refused.value.maximum == Decimal("103600.00")


def test_interest_only_prepayment_keeps_the_balloon_on_the_last_line():
    rate = Decimal("0.06")
    schedule = build_schedule(Decimal("100000.00"), rate, 6, INTEREST_ONLY, START)
    interest = [(date(2025, month, 15), "500.00") for month in (2, 3, 4)]
    ledger = replay(schedule, rate, INTEREST_ONLY, book(*interest, (date(2025, 5, 10), "40500.00")))
    assert ledger.allocations[-1] == Allocation(
        "p4", date(2025, 5, 10), 4, Decimal("500.00"), Decimal("40000.00")
    )
    assert [(line.principal, line.interest) for line in ledger.lines[4:]] == [
        (Decimal("0.00"), Decimal("300.00")),
        (Decimal("60000.00"), Decimal("300.00")),
    ]
    assert principal_of(ledger) == Decimal("100000.00")
    assert payoff_amount(ledger, date(2025, 5, 20)) == Decimal("60300.00")
    settled = replay(
        schedule,
        rate,
        INTEREST_ONLY,
        book(*interest, (date(2025, 5, 10), "40500.00"), (date(2025, 5, 20), "60300.00")),
    )
    assert settled.settled_on == date(2025, 5, 20)
    assert [(line.number, line.principal) for line in settled.lines[3:]] == [
        (4, Decimal("40000.00")),
        (5, Decimal("60000.00")),
    ]


def test_reversing_a_payment_and_replaying_restores_the_earlier_state():
    a = Payment("a", due(1), MONTHLY)
    b = Payment("b", date(2025, 3, 10), MONTHLY + 50000)
    c = Payment("c", date(2025, 4, 15), Decimal("5189.44"))
    before = replay(SCHEDULE, RATE, EQUAL_INSTALLMENT, [a])
    with_b = replay(SCHEDULE, RATE, EQUAL_INSTALLMENT, [a, b, c])
    assert arrears(with_b, date(2025, 4, 16)).days_past_due == 0
    assert replay(SCHEDULE, RATE, EQUAL_INSTALLMENT, [a]) == before
    reversed_b = replay(SCHEDULE, RATE, EQUAL_INSTALLMENT, [p for p in [a, b, c] if p is not b])
    assert reversed_b != with_b
    assert [(line.principal, line.interest) for line in reversed_b.lines] == [
        (row.principal, row.interest) for row in SCHEDULE.installments
    ]
    # Without b, c lands on the overdue second instalment instead.
    assert reversed_b.allocations[-1] == Allocation(
        "c", date(2025, 4, 15), 2, Decimal("551.36"), Decimal("4638.08")
    )
    state = arrears(reversed_b, date(2025, 4, 16))
    assert state.days_past_due == 32 and state.overdue_principal == Decimal("5138.53") + Decimal("9825.49")


def test_payments_are_applied_in_date_order():
    shuffled = [Payment("late", date(2025, 3, 15), MONTHLY), Payment("early", due(1), MONTHLY)]
    ledger = replay(SCHEDULE, RATE, EQUAL_INSTALLMENT, shuffled)
    assert [(a.payment_id, a.number) for a in ledger.allocations] == [("early", 1), ("late", 2)]


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-1.00"), Decimal("1.001"), Decimal("NaN")])
def test_a_payment_is_a_positive_amount_in_cents(amount):
    with pytest.raises(ValueError):
        Payment("x", START, amount)


def test_unknown_methods_and_mismatched_schedules_are_refused():
    with pytest.raises(ValueError):
        replay(SCHEDULE, RATE, "weekly", [])
    with pytest.raises(ValueError):
        replay(SCHEDULE, RATE, BULLET, [])


# Properties over any terms and any payments that the loan can take.

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000000.00"), places=2)
rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("0.24"), places=6)
terms = st.integers(min_value=1, max_value=360)
SCALE = 10**6
draws = st.lists(
    st.tuples(st.integers(0, SCALE), st.integers(1, SCALE)),  # when within the term; share of the payoff
    max_size=8,
)


def pay_randomly(schedule, rate, method, chosen):
    span = (schedule.installments[-1].due_date - START).days
    payments: list[Payment] = []
    ledger = replay(schedule, rate, method, payments)
    for n, (when, share) in enumerate(sorted(chosen)):
        day = START + timedelta(days=span * when // SCALE)
        payoff = payoff_amount(ledger, day)
        if payoff == 0:
            break
        payments.append(Payment(n, day, max(CENT, cents(payoff * share / SCALE))))
        ledger = replay(schedule, rate, method, payments)
    return ledger, payments


@settings(max_examples=150, deadline=None)
@given(
    amount=amounts,
    rate=rates,
    term=terms,
    method=st.sampled_from(METHODS),
    chosen=draws,
    settle=st.booleans(),
    as_of=st.integers(0, SCALE),
)
def test_any_payments_keep_the_ledger_whole(amount, rate, term, method, chosen, settle, as_of):
    schedule = build_schedule(amount, rate, term, method, START)
    ledger, payments = pay_randomly(schedule, rate, method, chosen)
    assert principal_of(ledger) == amount
    paid = sum((p.amount for p in payments), Decimal("0"))
    assert sum((a.interest + a.principal for a in ledger.allocations), Decimal("0")) == paid
    for payment in payments:
        pieces = [a for a in ledger.allocations if a.payment_id == payment.id]
        assert sum((a.interest + a.principal for a in pieces), Decimal("0")) == payment.amount
        assert all(a.paid_on == payment.paid_on and a.interest >= 0 and a.principal >= 0 for a in pieces)
        assert all(a.interest or a.principal for a in pieces)
    for line in ledger.lines:
        assert line.principal >= 0 and line.interest >= 0
        assert 0 <= line.interest_paid <= line.interest and 0 <= line.principal_paid <= line.principal
        assert line.principal == cents(line.principal) and line.interest == cents(line.interest)
    assert [line.number for line in ledger.lines] == list(range(1, len(ledger.lines) + 1))
    assert ledger.outstanding_principal == amount - sum(
        (a.principal for a in ledger.allocations), Decimal("0")
    )
    assert ledger.outstanding_principal >= 0
    assert (ledger.settled_on is not None) == all(line.outstanding == 0 for line in ledger.lines)

    day = START + timedelta(days=(schedule.installments[-1].due_date - START).days * as_of // SCALE)
    state = arrears(ledger, day)
    assert state.days_past_due >= 0 and state.bucket == bucket_for(state.days_past_due)
    assert state.overdue_principal >= 0 and state.overdue_interest >= 0
    assert 0 <= state.outstanding_principal <= amount
    assert state.outstanding_principal >= ledger.outstanding_principal

    if settle and ledger.settled_on is None:
        last = max((p.paid_on for p in payments), default=START)
        payoff = payoff_amount(ledger, last)
        settled = replay(schedule, rate, method, [*payments, Payment("payoff", last, payoff)])
        assert settled.settled_on == last
        assert all(line.outstanding == 0 for line in settled.lines)
        assert principal_of(settled) == amount and settled.outstanding_principal == 0
        with pytest.raises(Overpayment) as refused:
            replay(schedule, rate, method, [*payments, Payment("over", last, payoff + CENT)])
        assert refused.value.maximum == payoff


@settings(max_examples=150, deadline=None)
@given(amount=amounts, rate=rates, term=terms, method=st.sampled_from(METHODS))
def test_paying_each_instalment_on_its_due_date_stays_current(amount, rate, term, method):
    schedule = build_schedule(amount, rate, term, method, START)
    owing = [row for row in schedule.installments if row.payment > 0]  # tiny loans can owe 0 some months
    ledger = replay(schedule, rate, method, [Payment(row.number, row.due_date, row.payment) for row in owing])
    assert ledger.settled_on == owing[-1].due_date
    assert [(line.principal, line.interest) for line in ledger.lines] == [
        (row.principal, row.interest) for row in schedule.installments
    ]
    for row in owing[:: max(1, len(owing) // 12)] + owing[-1:]:
        for day in (row.due_date, row.due_date + timedelta(days=1)):
            assert arrears(ledger, day).days_past_due == 0


@given(st.integers(0, 5000), st.integers(0, 5000))
def test_buckets_only_get_worse_with_more_days(a, b):
    low, high = sorted((a, b))
    assert BUCKETS.index(bucket_for(low)) <= BUCKETS.index(bucket_for(high))


def test_bucket_boundaries():
    assert [bucket_for(d) for d in (0, 1, 30, 31, 60, 61, 90, 91, 180, 181, 360, 361)] == [
        "current",
        "1-30",
        "1-30",
        "31-60",
        "31-60",
        "61-90",
        "61-90",
        "91-180",
        "91-180",
        "181-360",
        "181-360",
        "360+",
    ]
    with pytest.raises(ValueError):
        bucket_for(-1)


# Classification.


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, "normal"),
        (1, "special_mention"),
        (90, "special_mention"),
        (91, "substandard"),
        (270, "substandard"),
        (271, "doubtful"),
        (360, "doubtful"),
        (361, "loss"),
    ],
)
def test_default_rules_follow_the_2023_measures(days, expected):
    assert suggest_classification(days, [], DEFAULT_RULES)[0] == expected


def test_the_worst_matching_rule_wins_whatever_the_order():
    rules = [Rule("loss", min_days_past_due=10), Rule("special_mention", min_days_past_due=1)]
    assert suggest_classification(15, [], rules) == ("loss", rules)
    assert suggest_classification(15, [], list(reversed(rules))) == ("loss", list(reversed(rules)))
    assert suggest_classification(5, [], rules) == ("special_mention", rules[1:])


def test_flags_raise_the_class():
    restructured = Rule("substandard", flag="restructured")
    assert suggest_classification(0, ["restructured"], DEFAULT_RULES) == ("substandard", [restructured])
    worst, matched = suggest_classification(100, iter(["litigation", "bankruptcy"]), DEFAULT_RULES)
    assert worst == "doubtful"
    assert {rule.flag or rule.min_days_past_due for rule in matched} == {1, 91, "litigation", "bankruptcy"}
    assert suggest_classification(400, ["litigation"], DEFAULT_RULES)[0] == "loss"


def test_no_matching_rule_is_normal():
    assert suggest_classification(5, [], []) == ("normal", [])
    assert suggest_classification(0, ["vip"], DEFAULT_RULES) == ("normal", [])
    assert CLASSES[0] == "normal" and CLASSES[-1] == "loss"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Rule("grim", min_days_past_due=1),
        lambda: Rule("loss"),
        lambda: Rule("loss", min_days_past_due=1, flag="fraud"),
        lambda: Rule("loss", min_days_past_due=-1),
    ],
)
def test_malformed_rules_are_refused(make):
    with pytest.raises(ValueError):
        make()
