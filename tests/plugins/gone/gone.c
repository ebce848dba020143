int pp_gone_function(void);
int pp_gone_function(void)
{
	return 42;
}
