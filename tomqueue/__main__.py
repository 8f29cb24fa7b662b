from tomqueue.cli import run

run()
