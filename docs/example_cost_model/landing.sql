-- The landing rows of the worked example in docs/cost_model.md, as raw-table rows
-- (the last two values of each row are _file_id and _row_number).
insert into raw.customers values
    ('A', 'Acme', 'Retail', 'North', '2020-01-01', 1, 1),
    ('B', 'Birch', 'Hospitality', 'South', '2020-01-01', 1, 2);
insert into raw.resource_costs values
    ('2025-01', 'customer_service', 96.00, 128, 2, 1),
    ('2025-01', 'logistics', 3000.00, null, 2, 2);
insert into raw.sales_ledger values
    ('L1', 'I1', 'invoice', '2025-01-06', 'A', 'P1', 100, 5000.00, 250.00, 3500.00, 'USD', 'edi', 0, 3, 1),
    ('L2', 'I2', 'invoice', '2025-01-07', 'B', 'P1', 4, 200.00, 0.00, 140.00, 'USD', 'phone', 0, 3, 2),
    ('L3', 'I3', 'invoice', '2025-01-20', 'B', 'P1', 3, 150.00, 0.00, 105.00, 'USD', 'phone', 0, 3, 3);
insert into raw.activity_events values
    ('E1', '2025-01-06', 'A', 'order_entry', 10, 'edi', null, null, null, 4, 1),
    ('E2', '2025-01-07', 'B', 'order_entry', 2, 'phone', null, null, 'rush', 4, 2),
    ('E3', '2025-01-20', 'B', 'order_entry', 1, 'phone', null, null, null, 4, 3),
    ('E4', '2025-01-21', 'B', 'support_ticket', 1, 'phone', 35, null, null, 4, 4),
    ('E5', '2025-01-22', 'B', 'support_ticket', 1, 'email', null, null, null, 4, 5),
    ('E6', '2025-01-06', 'A', 'delivery', 120, null, null, null, null, 4, 6),
    ('E7', '2025-01-07', 'B', 'delivery', 30, null, null, 85.00, 'rush', 4, 7),
    ('E8', '2025-01-20', 'B', 'delivery', 30, null, null, null, null, 4, 8);
