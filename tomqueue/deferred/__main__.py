from tomqueue.deferred.cli import main

main()
