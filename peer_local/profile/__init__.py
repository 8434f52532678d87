"""The person behind the clone: a profile folder (voice, face, persona) and its enrolment."""
