"""The booking engine: the rules a reservation or a blocker follows, one
place each; the scheduler's methods ask these modules."""
