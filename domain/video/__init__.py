"""Video consultations: booking against clinicians' hours, rooms and links, reminders, joins, no-shows."""
