/* libmemdemo: the one function the daemon needs from its library. */
#ifndef MEMDEMO_H
#define MEMDEMO_H
const char *memdemo_greeting(void);
#endif
