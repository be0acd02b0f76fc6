module selfheal/contractcheck

go 1.19
