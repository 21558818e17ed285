"""The provider network: inventory, planning, resource pools, pricing and L3NM rendering.

Pure code: nothing here imports FastAPI, SQLAlchemy or a driver.
"""
