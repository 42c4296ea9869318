"""Two-factor authentication: TOTP, emailed/texted codes, backup codes, step-up, lockout and recovery.

See docs/security.md for the model (threats, flows, settings) and service/twofactor/services.py for the rules.
"""
