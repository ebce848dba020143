/* A shared object without the pp_plugin symbol. */
__attribute__((visibility("default"))) int not_a_plugin(void);
int not_a_plugin(void)
{
	return 0;
}
