/* sysdb.c - placeholder */
int lode__sysdb_placeholder;
