"""Incidents: alarms grouped into open -> acknowledged -> resolved incidents, each with an
explanation (which features moved, by how much, against which reference) and a report."""
