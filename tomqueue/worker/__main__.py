from tomqueue.worker.cli import main

main()
