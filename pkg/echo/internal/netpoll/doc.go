// Package netpoll is the system-call layer of pkg/echo's event loops on
// Linux, apart from what the loops do with the events: a Poller (an epoll
// set with the eventfd that interrupts its wait and the timerfd that ends
// it at a time) and the calls a loop makes on its non-blocking sockets,
// made raw (Read, Write, Accept4, Close). It holds no state of a
// connection and no policy; on other systems it is empty.
package netpoll
