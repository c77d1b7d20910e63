"""The portal sections a sign-in link may open, with the labels people see. The lifecycle's rule
(which targets a link may carry), the console's pages and the portal's home all read them here."""

SECTIONS = {"courses": "Courses", "communities": "Communities", "affiliates": "Affiliates"}
