"""The pages, one module per area; ``civicgrid/web/urls.py`` routes to them.

For example ``home`` (工作台 and the grid map), ``cases`` (the case list and the case page with
its actions), ``case_list`` (the filterable case table every list page reuses),
``notifications`` (what needs my action now); shared bits are in ``helpers``.
"""
