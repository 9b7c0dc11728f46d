/* The smallest program: what a fork+exec benchmark execs. */
int main(void) { return 0; }
