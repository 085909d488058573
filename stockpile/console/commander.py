"""placeholder"""
HANDLERS = []
