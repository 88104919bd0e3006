/* executor.c - placeholder */
int lode__executor_placeholder;
