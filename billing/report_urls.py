from __future__ import annotations

from django.urls import path

from billing import views

urlpatterns = [
    path("reports/weekly/", views.weekly_report_page, name="weekly-report"),
    path(
        "reports/weekly/opt-out/<str:token>/",
        views.weekly_report_opt_out,
        name="weekly-report-opt-out",
    ),
    path("budgets/", views.budgets_page, name="console-budgets"),
    path("requests/", views.requests_page, name="console-requests"),
    path("requests/<int:record_id>/", views.request_detail, name="console-request"),
    *(
        path(
            f"budgets/<int:budget_id>/{action}/",
            views.budget_action,
            {"action": action},
            name=f"console-budget-{action}",
        )
        for action in ("enable", "disable", "delete")
    ),
    path(
        "api/v1/reports/weekly.csv",
        views.WeeklyReportCSVView.as_view(),
        name="weekly-report-csv",
    ),
]
