"""The journal example of `../shared/spec/JOURNAL.md`, shared by the journal tests."""

EXAMPLE = """\
; lines starting with ; or # are comments
option operating-currency GBP

2024-01-01 commodity GBP
  exponent: -2
2024-01-01 commodity BTC
  exponent: -8
2024-01-01 open Asset:Bank:Current GBP
2024-01-01 open Liability:Savings:0001 GBP
  interest-rate: 0.05
alias Current Asset:Bank:Current

2024-01-02 * Opening balance
  Equity:Capital -> Current 1,000.00 GBP

2026-02-01T09:30:00Z%2026-02-02 * Payroll
  Income:Salary → Asset:Bank:Current "net salary" 4000.00 GBP
  +Income:Salary // Expense:Tax "income tax" 1000.00 GBP
  receipt: scan-001.pdf

2026-03-01 ! Pending invoice
  Asset:Bank:Current > Expense:Food 15.50 GBP
"""
