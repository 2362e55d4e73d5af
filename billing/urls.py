from __future__ import annotations

from django.urls import path

from billing import api

urlpatterns = [
    path("budgets", api.BudgetListCreateView.as_view(), name="budgets"),
    path("budgets/<int:budget_id>", api.BudgetDetailView.as_view(), name="budget-detail"),
    path("alerts", api.AlertListView.as_view(), name="budget-alerts"),
    path("usage", api.UsageListView.as_view(), name="usage"),
    path("spend/summary", api.SpendSummaryView.as_view(), name="spend-summary"),
    path("operator/usage", api.OperatorUsageView.as_view(), name="operator-usage"),
    path(
        "operator/spend/summary",
        api.OperatorSpendSummaryView.as_view(),
        name="operator-spend-summary",
    ),
]
